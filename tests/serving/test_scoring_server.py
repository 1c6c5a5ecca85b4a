"""The scoring server with a scoring script: Azure's init()/run() contract over real HTTP."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.serving.conftest import write_code, write_model


def _script_server(start_server: Any, tmp_path: Path, extra: str = "", **config: Any) -> Any:
    return start_server(
        model_dir=str(write_model(tmp_path / "model", weight=3.0)),
        code_dir=str(write_code(tmp_path / "code", extra=extra)),
        scoring_script="score.py",
        **config,
    )


def test_init_runs_once_with_the_model_dir_and_run_scores(start_server: Any, tmp_path: Path):
    server = _script_server(start_server, tmp_path)
    assert server.status["state"] == "ready"
    with httpx.Client(base_url=server.url) as client:
        first = client.post("/score", json={"x": [1, 2]})
        second = client.post("/score", json={"x": [5]})
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "application/json"
    body = first.json()
    assert body["y"] == [3.0, 6.0]  # the weight init() read from AZUREML_MODEL_DIR
    assert body["model_dir"] == str(tmp_path / "model")
    assert body["cwd"] == str(tmp_path / "code")
    assert second.json()["y"] == [15.0]
    assert second.json()["init_calls"] == 1


def test_health_routes_and_unknown_routes(start_server: Any, tmp_path: Path):
    server = _script_server(start_server, tmp_path)
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/health/live").status_code == 200
        assert client.get("/health/ready").json() == {"status": "ready"}
        assert client.get("/nowhere").status_code == 404
        assert client.get("/score").status_code == 405


def test_malformed_json_is_a_400_and_the_instance_keeps_serving(start_server: Any, tmp_path: Path):
    server = _script_server(start_server, tmp_path)
    with httpx.Client(base_url=server.url) as client:
        bad = client.post(
            "/score", content=b'{"x": [1,', headers={"content-type": "application/json"}
        )
        not_utf8 = client.post("/score", content=b"\xff\xfe")
        good = client.post("/score", json={"x": [1]})
    assert bad.status_code == 400
    assert "malformed JSON" in bad.json()["error"]
    assert not_utf8.status_code == 400
    assert "UTF-8" in not_utf8.json()["error"]
    assert good.status_code == 200


def test_run_raising_is_a_500_with_an_error_id_logged_with_its_traceback(
    start_server: Any, tmp_path: Path
):
    server = _script_server(start_server, tmp_path)
    with httpx.Client(base_url=server.url) as client:
        failed = client.post("/score", json={"fail": True})
        after = client.post("/score", json={"x": [1]})
    assert failed.status_code == 500
    error_id = failed.json()["error_id"]
    assert error_id in failed.json()["error"]
    assert "asked to fail" not in failed.text  # the exception's text stays in the log
    assert after.status_code == 200
    log = server.log()
    assert f"error {error_id}: run() raised an exception" in log
    assert "ValueError: run() was asked to fail" in log.split(error_id, 1)[1]


def test_a_result_that_is_not_json_is_a_500(start_server: Any, tmp_path: Path):
    extra = """
    def run(raw_data):
        return object()
    """
    server = _script_server(start_server, tmp_path, extra=extra)
    response = httpx.post(f"{server.url}/score", json={})
    assert response.status_code == 500
    assert "not JSON-serialisable" in response.json()["error"]


def test_a_slow_run_gets_504_while_a_concurrent_fast_one_succeeds(
    start_server: Any, tmp_path: Path
):
    server = _script_server(start_server, tmp_path, request_timeout_ms=400)
    results: dict[str, Any] = {}

    def slow() -> None:
        results["slow"] = httpx.post(f"{server.url}/score", json={"sleep": 2}, timeout=10)

    thread = threading.Thread(target=slow)
    started = time.monotonic()
    thread.start()
    time.sleep(0.1)
    fast = httpx.post(f"{server.url}/score", json={"x": [1]}, timeout=10)
    fast_done = time.monotonic() - started
    thread.join()
    assert fast.status_code == 200
    assert fast_done < 1.5  # answered while the slow call still ran
    assert results["slow"].status_code == 504
    assert "400 ms" in results["slow"].json()["error"]


def test_requests_beyond_the_concurrency_limit_get_429_until_the_thread_ends(
    start_server: Any, tmp_path: Path
):
    server = _script_server(
        start_server, tmp_path, max_concurrent_requests=1, request_timeout_ms=300
    )
    with (
        httpx.Client(base_url=server.url, timeout=10) as slow_client,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        timed_out = slow_client.post("/score", json={"sleep": 1.5})
        assert timed_out.status_code == 504
        # The timed-out call's thread still runs and holds the only slot.
        busy = client.post("/score", json={"x": [1]})
        assert busy.status_code == 429
        assert "max_concurrent_requests_per_instance" in busy.json()["error"]
        time.sleep(1.5)
        assert client.post("/score", json={"x": [1]}).status_code == 200


def test_a_body_over_the_limit_is_a_413_before_it_is_read(start_server: Any, tmp_path: Path):
    server = _script_server(start_server, tmp_path, max_body_bytes=1000)
    big = json.dumps({"x": [1] * 2000}).encode()
    sized = httpx.post(f"{server.url}/score", content=big)
    assert sized.status_code == 413
    assert "1000 bytes" in sized.json()["error"]

    def chunks() -> Any:
        for start in range(0, len(big), 100):
            yield big[start : start + 100]

    chunked = httpx.post(f"{server.url}/score", content=chunks())
    assert chunked.status_code == 413
    assert httpx.post(f"{server.url}/score", json={"x": [2]}).json()["y"] == [6.0]


def test_a_chunked_body_under_the_limit_is_scored(start_server: Any, tmp_path: Path):
    server = _script_server(start_server, tmp_path)
    body = json.dumps({"x": list(range(50))}).encode()

    def chunks() -> Any:
        for start in range(0, len(body), 7):
            yield body[start : start + 7]

    response = httpx.post(f"{server.url}/score", content=chunks())
    assert response.status_code == 200
    assert response.json()["y"] == [3.0 * x for x in range(50)]


def test_pipelined_requests_on_one_connection_are_answered_in_order(
    start_server: Any, tmp_path: Path
):
    server = _script_server(start_server, tmp_path)
    requests = b""
    for x in (1, 2, 3):
        body = json.dumps({"x": [x]}).encode()
        requests += b"POST /score HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (
            len(body),
            body,
        )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(requests)
        received = b""
        while received.count(b'"y":') < 3:
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
    ys = [part.split(b"]", 1)[0] for part in received.split(b'"y":[')[1:]]
    assert ys == [b"3.0", b"6.0", b"9.0"]
    assert received.count(b"HTTP/1.1 200 OK") == 3


def test_malformed_requests_are_refused_with_4xx(start_server: Any, tmp_path: Path):
    server = _script_server(start_server, tmp_path)
    for raw, status in [
        (b"NONSENSE\r\n\r\n", b"400"),
        (b"POST /score HTTP/1.1\r\nContent-Length: x\r\n\r\n", b"400"),
        (b"POST /score HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", b"501"),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n", b"431"),
    ]:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(raw)
            assert sock.recv(100).startswith(b"HTTP/1.1 " + status), raw[:40]
    assert httpx.get(f"{server.url}/health/live").status_code == 200


def test_init_raising_writes_the_traceback_and_exits(start_server: Any, tmp_path: Path):
    extra = """
    def init():
        raise RuntimeError("the model file is corrupt")
    """
    server = _script_server(start_server, tmp_path, extra=extra)
    assert server.status["state"] == "failed"
    assert "RuntimeError: the model file is corrupt" in server.status["error"]
    assert "score.py" in server.status["error"]  # the traceback, not just the message
    assert server.process.wait(10) == 3


def test_a_script_outside_the_code_folder_is_refused(start_server: Any, tmp_path: Path):
    (tmp_path / "elsewhere.py").write_text("def run(raw):\n    return 1\n")
    server = start_server(
        model_dir=str(write_model(tmp_path / "model")),
        code_dir=str(write_code(tmp_path / "code")),
        scoring_script="../elsewhere.py",
    )
    assert server.status["state"] == "failed"
    assert "is not a file in" in server.status["error"]


def test_sigterm_finishes_the_request_in_flight(start_server: Any, tmp_path: Path):
    server = _script_server(start_server, tmp_path)
    results: dict[str, Any] = {}
    mark = tmp_path / "in-flight"

    def slow() -> None:
        body = {"sleep": 1.0, "x": [1], "mark": str(mark)}
        results["r"] = httpx.post(f"{server.url}/score", json=body, timeout=30)

    thread = threading.Thread(target=slow)
    thread.start()
    deadline = time.monotonic() + 20
    while not mark.exists():  # run() has the request: a busy machine may take a while
        assert time.monotonic() < deadline, "the request never reached run()"
        time.sleep(0.01)
    server.process.terminate()
    thread.join()
    assert results["r"].status_code == 200
    assert results["r"].headers["connection"] == "close"
    assert server.process.wait(10) == 0


def test_a_script_named_like_a_loaded_module_does_not_replace_it(start_server: Any, tmp_path: Path):
    code = write_code(tmp_path / "code")
    (code / "score.py").rename(code / "json.py")
    server = start_server(
        model_dir=str(write_model(tmp_path / "model", weight=3.0)),
        code_dir=str(code),
        scoring_script="json.py",
    )
    response = httpx.post(f"{server.url}/score", json={"x": [1]})
    assert response.status_code == 200, server.log()
    assert response.json()["y"] == [3.0]
