"""The project's layering and style rules, checked on every run."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tui_echo"
PURE_MODULES = (
    "events",
    "commands",
    "state",
    "config",
    "escape",
    "eventlog",
    "listeners",
    "units",
    "sendtext",
    "hexdump",
    "engine",
    "tracker",
    "feedlines",
)
MONITOR_MODULES = sorted((PACKAGE / "monitor").glob("*.py"))


def imported_roots(module: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("name", PURE_MODULES)
def test_pure_modules_import_neither_trio_nor_textual(name: str) -> None:
    assert not imported_roots(PACKAGE / f"{name}.py") & {"trio", "textual"}


def test_the_engine_never_imports_textual() -> None:
    for module in ("server", "publisher", "headless", "cli", "bridge"):
        assert "textual" not in imported_roots(PACKAGE / f"{module}.py"), module


@pytest.mark.parametrize("module", MONITOR_MODULES, ids=lambda path: path.name)
def test_the_monitor_never_imports_trio(module: Path) -> None:
    assert "trio" not in imported_roots(module)


def test_the_stylesheet_sits_beside_the_app_module() -> None:
    from tui_echo.monitor.app import MonitorApp

    assert (PACKAGE / "monitor" / str(MonitorApp.CSS_PATH)).is_file()


def test_ruff_finds_nothing() -> None:
    done = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict_finds_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(ROOT / ".mypy_cache"), str(PACKAGE)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
