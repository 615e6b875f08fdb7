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
        "output.py",
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
SERVER = modules("server", "server/modes")
NO_TEXTUAL = (
    SERVER
    + modules("headless", "load", "control", "demo")
    + [PACKAGE / "consoles" / "main.py", PACKAGE / "consoles" / "web.py"]
    + [PACKAGE / "cli.py", PACKAGE / "service.py", PACKAGE / "monitor" / "guest.py"]
)
# The server is the bottom of the stack: what runs it, watches it or steers it sits above it.
ABOVE_THE_SERVER = (
    "tui_echo.control",
    "tui_echo.consoles",
    "tui_echo.monitor",
    "tui_echo.headless",
    "tui_echo.demo",
    "tui_echo.load",
    "tui_echo.cli",
    "tui_echo.service",
)
# A mode handler gets a connection and a narrow context, never the server or its other parts.
MODES = modules("server/modes")
NOT_FOR_MODES = ("tui_echo.server.server", "tui_echo.server.admission", "tui_echo.server.operator")
NO_TRIO = modules("monitor/widgets", "monitor/screens") + [
    PACKAGE / "monitor" / name for name in ("app.py", "signals.py", "attached.py", "tab_driver.py")
]


def imported_modules(module: Path) -> set[str]:
    """Every module it imports by absolute name, wherever the import is (in a function, under TYPE_CHECKING);
    ``from a import b`` counts as both ``a`` and ``a.b``, since ``b`` may be a module."""
    names = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def imported_roots(module: Path) -> set[str]:
    return {name.split(".")[0] for name in imported_modules(module)}


def within(modules: set[str], packages: tuple[str, ...]) -> set[str]:
    """Those of ``modules`` that are one of ``packages`` or inside one."""
    return {m for m in modules if any(m == p or m.startswith(p + ".") for p in packages)}


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


@pytest.mark.parametrize("module", SERVER, ids=name)
def test_the_server_imports_nothing_that_runs_watches_or_steers_it(module: Path) -> None:
    assert within(imported_modules(module), ABOVE_THE_SERVER) == set()


@pytest.mark.parametrize("module", MODES, ids=name)
def test_a_mode_handler_never_reaches_the_whole_server(module: Path) -> None:
    assert within(imported_modules(module), NOT_FOR_MODES) == set()


@pytest.mark.parametrize("module", NO_TRIO, ids=name)
def test_the_monitors_widgets_never_import_trio(module: Path) -> None:
    assert "trio" not in imported_roots(module)


def test_the_consoles_and_load_start_without_the_server() -> None:
    # tui-echo ctl, list, events and load (and --help) start in about half the time without trio and the
    # server's modules: scripts call ctl in loops, and the tests start these commands hundreds of times.
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, tui_echo.cli, tui_echo.consoles.main, tui_echo.load.cli; print(*sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert not {"trio", "textual", "tui_echo.server.echo_server", "tui_echo.control.listener"} & set(loaded)


def test_the_stylesheet_sits_beside_the_app_module() -> None:
    from tui_echo.monitor.app import MonitorApp

    assert (PACKAGE / "monitor" / str(MonitorApp.CSS_PATH)).is_file()


def test_ruff_finds_nothing() -> None:
    done = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.timeout(300)  # mypy checks the whole package: 12 s alone, several times that beside other tests
def test_mypy_strict_finds_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(ROOT / ".mypy_cache"), str(PACKAGE)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
