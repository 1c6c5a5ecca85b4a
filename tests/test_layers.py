"""The layers of DESIGN.md §3: dependencies point down only, and the SDK never loads the server.

``api, cli > services > store | storage | compute > domain``; ``sdk`` depends only on
``domain`` and the shared ``schemas``. The first test imports the SDK in a fresh interpreter
and looks at what got loaded; the others read every module's imports with ``ast`` (including
imports inside functions and ``if TYPE_CHECKING:`` blocks), so a violation is caught even on a
code path no test runs.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import shipyard

PACKAGE_ROOT = Path(shipyard.__file__).resolve().parent
SERVER_SIDE = (
    "shipyard.api",
    "shipyard.services",
    "shipyard.store",
    "shipyard.storage",
    "shipyard.compute",
    "shipyard.cli",
    "fastapi",
    "sqlalchemy",
    "uvicorn",
    "starlette",
    "alembic",
)


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_importing_the_sdk_loads_no_server_code() -> None:
    script = (
        "import json, sys\n"
        "import shipyard\n"
        "from shipyard import Client\n"
        "import shipyard.sdk.yaml\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert "shipyard.sdk.client" in loaded  # the check below looked at a real import
    offending = {
        prefix: [m for m in loaded if _under(m, (prefix,))]
        for prefix in SERVER_SIDE
        if any(_under(m, (prefix,)) for m in loaded)
    }
    report = "\n  ".join(
        f"{prefix}: {len(modules)} modules ({', '.join(modules[:4])}{', ...' * (len(modules) > 4)})"
        for prefix, modules in offending.items()
    )
    assert not offending, f"importing the SDK loaded server-side code:\n  {report}"


# ---------------------------------------------------------------------------------------------
# Static import rules


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(root: Path, path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module) for every import in a file, relative imports resolved."""
    module = _module_name(root, path)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.split(".")
                if path.name != "__init__.py":
                    package.pop()
                base = package[: len(package) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if "." in target:
                yield node.lineno, target
            else:  # ``from shipyard import store`` names the layer in the imported names
                for alias in node.names:
                    yield node.lineno, f"{target}.{alias.name}"


def _layer(root: Path, module: str) -> str | None:
    """The layer of a shipyard module (``shipyard.store.x`` -> ``store``), else None."""
    parts = module.split(".")
    if parts[0] != root.name or len(parts) < 2:
        return None
    layer = parts[1]
    if (root / layer).is_dir() or (root / f"{layer}.py").is_file():
        return layer
    return None


def _violations(
    layer: str, allowed: set[str] | None, forbidden: set[str], root: Path = PACKAGE_ROOT
) -> list[str]:
    """``file:line: imports module`` for each import of ``layer`` that breaks its rule."""
    folder = root / layer
    assert folder.is_dir(), f"no layer {layer!r} at {folder}"
    found = []
    for path in sorted(folder.rglob("*.py")):
        for line, target in sorted(set(_imports(root, path))):
            other = _layer(root, target)
            if other is None or other == layer:
                continue
            if (allowed is not None and other not in allowed) or other in forbidden:
                found.append(f"{path.relative_to(root.parent)}:{line}: imports {target}")
    return found


RULES: list[tuple[str, set[str] | None, set[str]]] = [
    # (layer, the only other layers it may import (None: any not forbidden), layers it may not)
    ("domain", set(), set()),
    ("schemas", {"domain"}, set()),
    ("sdk", {"domain", "schemas", "_version"}, set()),
    ("store", None, {"services", "api", "cli", "sdk", "compute"}),
    ("services", None, {"api", "cli", "sdk"}),
    ("storage", None, {"services", "api", "cli", "sdk", "store", "compute"}),
    # Compute (the environment builder, the scheduler, launchers) sits beside store and
    # storage: services use it; it uses them and the domain, never services or the API.
    ("compute", None, {"services", "api", "cli", "sdk", "mlflow"}),
    # The MLflow surface sits beside the API (and reuses its authorization dependency); it
    # reaches data only through services.
    ("mlflow", None, {"store", "storage", "cli", "sdk"}),
    # The serving runtime (scoring instances and their supervisor) is a leaf: the scoring
    # server runs under a user's environment, where no other part of Shipyard is installed.
    ("serving", {"domain"}, set()),
]


@pytest.mark.parametrize(("layer", "allowed", "forbidden"), RULES, ids=[r[0] for r in RULES])
def test_layer_imports_point_down_only(
    layer: str, allowed: set[str] | None, forbidden: set[str]
) -> None:
    found = _violations(layer, allowed, forbidden)
    if allowed is None:
        rule = f"may not import {sorted(forbidden)}"
    elif allowed:
        rule = f"may import only {sorted(allowed)}"
    else:
        rule = "may import no other layer"
    assert found == [], f"shipyard.{layer} {rule} of shipyard, but:\n  " + "\n  ".join(found)


def test_the_import_reader_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The checker itself, on a throwaway package: every kind of import is seen and resolved."""
    root = tmp_path / "shipyard"
    for layer in ("sdk", "schemas", "store", "services", "api", "cli", "storage"):
        (root / layer).mkdir(parents=True)
        (root / layer / "__init__.py").write_text("", encoding="utf-8")
    (root / "__init__.py").write_text("", encoding="utf-8")
    (root / "_version.py").write_text("", encoding="utf-8")
    (root / "sdk" / "probe.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import shipyard.store.database\n"
        "from .. import services\n"
        "from ..api import app\n"
        "if TYPE_CHECKING:\n"
        "    from shipyard.cli import main\n"
        "def later():\n"
        "    from shipyard import storage, _version\n"
        "from . import http\n"
        "from shipyard.schemas import common\n"
        "import shipyard\n"
        "import sqlalchemy\n",
        encoding="utf-8",
    )
    (root / "sdk" / "__init__.py").write_text("from .probe import later\n", encoding="utf-8")
    found = _violations("sdk", {"schemas", "_version"}, set(), root=root)
    assert found == [
        "shipyard/sdk/probe.py:2: imports shipyard.store.database",
        "shipyard/sdk/probe.py:3: imports shipyard.services",
        "shipyard/sdk/probe.py:4: imports shipyard.api",
        "shipyard/sdk/probe.py:6: imports shipyard.cli",
        "shipyard/sdk/probe.py:8: imports shipyard.storage",
    ]
    assert _violations("store", None, {"sdk"}, root=root) == []
    assert _violations("sdk", None, {"store"}, root=root) == [
        "shipyard/sdk/probe.py:2: imports shipyard.store.database"
    ]
