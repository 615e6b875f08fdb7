"""The project's layering and style rules, checked on every run."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tui_echo"


def modules(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (PACKAGE / folder).glob("*.py"))


# Who may import what: the layout is the data flow.
PURE = modules("monitor/models") + [
    PACKAGE / name
    for name in (
        "text.py",
        "send_text.py",
        "arguments.py",
        "ratelimit.py",
        "event_records.py",
        "server/events.py",
        "server/commands.py",
        "server/clients.py",
        "server/config.py",
        "server/binding.py",
        "server/tls.py",
        "server/access.py",
        "server/refusals.py",
        "server/rules.py",
        "headless/log.py",
        "monitor/source.py",
        "control/paths.py",
        "control/protocol.py",
        "consoles/__init__.py",
        "consoles/connection.py",
        "consoles/tab_process.py",
        "monitor/remote.py",
        "demo/script.py",
    )
]
NO_TEXTUAL = (
    modules("server", "headless", "load", "control", "demo")
    + [PACKAGE / "consoles" / "main.py", PACKAGE / "consoles" / "web.py"]
    + [PACKAGE / "cli.py", PACKAGE / "monitor" / "guest.py"]
)
NO_TRIO = modules("monitor/widgets", "monitor/screens") + [
    PACKAGE / "monitor" / name for name in ("app.py", "signals.py", "attached.py", "tab_driver.py")
]


def imported_roots(module: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def name(path: Path) -> str:
    return str(path.relative_to(PACKAGE))


def test_every_module_is_under_a_rule() -> None:
    ruled = set(PURE) | set(NO_TEXTUAL) | set(NO_TRIO)
    free = {PACKAGE / "__init__.py", PACKAGE / "__main__.py"} | set(PACKAGE.glob("*/__init__.py"))
    assert {name(p) for p in PACKAGE.rglob("*.py")} - {name(p) for p in ruled | free} == set()


@pytest.mark.parametrize("module", PURE, ids=name)
def test_pure_modules_import_neither_trio_nor_textual(module: Path) -> None:
    assert not imported_roots(module) & {"trio", "textual"}


@pytest.mark.parametrize("module", NO_TEXTUAL, ids=name)
def test_the_server_and_headless_never_import_textual(module: Path) -> None:
    assert "textual" not in imported_roots(module)


@pytest.mark.parametrize("module", NO_TRIO, ids=name)
def test_the_monitors_widgets_never_import_trio(module: Path) -> None:
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
