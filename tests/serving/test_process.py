"""One instance process and its files: the status file is written by the user's code, so
the supervisor reads it without following a link or blocking on a FIFO planted in its place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.serving.conftest import script_spec, wait_for, write_code

PLANT_LINK = """
def init():
    target = os.path.join(os.environ["HOME"], "..", "..", "..", "only-the-server.json")
    status = os.path.join(os.environ["HOME"], "status.json")
    os.remove(status)
    os.symlink(os.path.abspath(target), status)
    os._exit(1)
"""

PLANT_FIFO = """
def init():
    status = os.path.join(os.environ["HOME"], "status.json")
    os.remove(status)
    os.mkfifo(status)
    time.sleep(600)
"""


def test_a_linked_status_file_is_not_followed(supervise: Any, tmp_path: Path) -> None:
    secret = tmp_path / "only-the-server.json"
    secret.write_text(json.dumps({"state": "failed", "error": "SECRET-CONTENTS"}))
    code = write_code(tmp_path / "link", extra=PLANT_LINK)
    supervisor = supervise(script_spec(tmp_path, code_dir=code), max_start_failures=1)
    status = wait_for(supervisor, "Failed")
    assert status.error is not None
    assert "the instance process ended (exit code 1)" in status.error
    assert "SECRET-CONTENTS" not in status.error


def test_a_fifo_in_place_of_the_status_file_does_not_hang_the_supervisor(
    supervise: Any, tmp_path: Path
) -> None:
    code = write_code(tmp_path / "fifo", extra=PLANT_FIFO)
    spec = script_spec(tmp_path, code_dir=code, start_timeout_seconds=2.0)
    supervisor = supervise(spec, max_start_failures=1)
    # The supervisor keeps ticking: the start times out and the revision is given up.
    status = wait_for(supervisor, "Failed", timeout=30)
    assert "init() did not finish within 2s" in (status.error or "")
