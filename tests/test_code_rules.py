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
        "monitor/gc_pace.py",
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
    PACKAGE / "monitor" / name for name in ("app.py", "signals.py", "attached.py", "tab_driver.py", "private_api.py")
]
# Within the monitor nothing imports upward: the app composes screens, screens compose widgets, widgets show models.
ABOVE = {
    "monitor/models": ("tui_echo.monitor.widgets", "tui_echo.monitor.screens", "tui_echo.monitor.app"),
    "monitor/widgets": ("tui_echo.monitor.screens", "tui_echo.monitor.app", "tui_echo.monitor.attached"),
    "monitor/screens": ("tui_echo.monitor.app", "tui_echo.monitor.attached"),
}


def imported_roots(module: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def imported_modules(module: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


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


@pytest.mark.parametrize("folder", sorted(ABOVE))
def test_nothing_in_the_monitor_imports_upward(folder: str) -> None:
    upward = {
        name(module): sorted(m for m in imported_modules(module) if m.startswith(ABOVE[folder]))
        for module in modules(folder)
    }
    assert {module: found for module, found in upward.items() if found} == {}


def private_names(module: Path) -> tuple[set[str], set[str]]:
    """The private names a module uses on ``self``, and those it defines (methods, assigned attributes)."""
    tree = ast.parse(module.read_text())
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"
    }
    defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)} | {
        target.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Attribute)
    }
    return {n for n in used if n.startswith("_")}, {n for n in defined if n.startswith("_")}


def test_the_attached_app_uses_no_private_name_of_the_monitor_app() -> None:
    """``AttachedApp`` extends ``MonitorApp`` through its public face (``main``, ``quitting``, ``server_stopped``…)."""
    used, defined = private_names(PACKAGE / "monitor" / "attached.py")
    _, the_apps = private_names(PACKAGE / "monitor" / "app.py")
    assert (used - defined, used & the_apps - {"__init__"}) == (set(), set())


# Issue 16 splits these; once it has, this set is empty and stays so.
LONG_MODULES = {"server/echo_server.py", "control/protocol.py"}
MAX_LINES = 450


@pytest.mark.parametrize("module", sorted(PACKAGE.rglob("*.py")), ids=name)
def test_no_module_is_over_450_lines(module: Path) -> None:
    lines = len(module.read_text().splitlines())
    assert (lines > MAX_LINES) == (name(module) in LONG_MODULES), f"{name(module)}: {lines} lines"


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
