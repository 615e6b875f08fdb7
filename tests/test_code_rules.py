"""The project's layering and style rules, checked on every run.

Imports are read from the source (``ast``), all of them: at the top, inside
functions (lazy) and under ``if TYPE_CHECKING``. Each module belongs to a
*unit*: its folder (``server``, ``monitor/widgets``), or for a module at the
top of the package, its own name (``cli``, ``net``). The tables below say
which units each unit may import and which of trio and Textual it may use;
a new folder or top-level module needs a row, so the rules follow the
layout as it changes.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tui_echo"

# Who may import whom: the layout is the data flow, and nothing imports back up. A unit may always
# import its own modules.
# Pure helpers everyone may use.
BASICS = {"net", "times", "text", "ratelimit", "send_text", "arguments", "output", "client_filter", "client_keys"}
MAY_IMPORT: dict[str, set[str]] = {
    "__init__": set(),
    "net": set(),  # peers, socket errors
    "times": set(),  # UTC times as records carry them
    "ratelimit": set(),
    "send_text": set(),
    "arguments": set(),
    "output": set(),  # a command's stdout, and a reader that went away
    "client_filter": {"client_keys"},  # filter expressions over clients: the monitor's / and ctl --filter
    "client_keys": set(),  # how a console names clients: one server's ids, or several servers' (#12@7002)
    "text": {"net"},  # text for people
    "server": BASICS | {"server/modes"},  # the engine: never a console, the monitor, the log, the CLI
    "server/modes": BASICS | {"server"},  # one handler per mode; never the whole server (see below)
    "wire": {"net", "times", "text", "server"},  # the codec of the server's events and state
    "control": BASICS | {"server", "wire"},  # the control socket: both its ends
    "ops": BASICS | {"server"},  # systemd and Prometheus: how the server fits among an operator's services
    "recording": BASICS | {"server", "wire"},  # the recording writer and its readers (replay, export, load --replay)
    "service": BASICS
    | {"server", "control", "ops", "recording"},  # the one assembly: server + events + control + recording
    "headless": BASICS | {"server", "wire", "control", "service", "recording"},
    "monitor/models": BASICS | {"server", "wire"},
    "monitor/widgets": BASICS | {"server", "monitor/models"},
    "monitor/screens": BASICS | {"server", "monitor/models", "monitor/widgets"},
    "monitor": BASICS
    | {"server", "wire", "control", "service", "recording", "monitor/models", "monitor/widgets", "monitor/screens"},
    "demo": BASICS | {"server", "monitor"},
    "load": BASICS,  # a load generator for any echo server: knows nothing of this one
    "consoles": BASICS | {"server", "wire", "control", "headless", "monitor", "recording"},
    "cli": BASICS | {"server", "control", "headless", "monitor", "consoles", "demo", "load", "ops", "recording"},
    "__main__": {"cli", "consoles"},  # consoles/tab_process first: a tab's console dies with tui-echo web
}
# Single modules a unit may import from a unit it may not import as a whole: the two modules of monitor/
# that sit below its screens (what they read of a server; the one door to a private Textual view).
MAY_ALSO_IMPORT: dict[str, set[str]] = {
    "monitor/screens": {"monitor/source.py", "monitor/private_api.py"},
}
# Within the monitor nothing imports upward: the app composes screens, screens compose widgets, widgets
# show models (implied by the table; said here by name).
ABOVE: dict[str, tuple[str, ...]] = {
    "monitor/models": ("tui_echo.monitor.widgets", "tui_echo.monitor.screens", "tui_echo.monitor.app"),
    "monitor/widgets": ("tui_echo.monitor.screens", "tui_echo.monitor.app", "tui_echo.monitor.attached"),
    "monitor/screens": ("tui_echo.monitor.app", "tui_echo.monitor.attached"),
}
# A mode handler gets a connection and a narrow context (tui_echo.server.context), never the server or
# its other parts: server/modes may import server, but not these.
NOT_FOR_MODES = ("tui_echo.server.server", "tui_echo.server.admission", "tui_echo.server.operator")

# Which of trio and Textual a unit may use (none unless listed). No module uses both: the monitor runs
# trio as a guest in Textual's event loop, and only monitor/guest.py touches trio there.
FRAMEWORKS: dict[str, set[str]] = {
    "server": {"trio"},
    "server/modes": {"trio"},
    "control": {"trio"},
    "service": {"trio"},
    "ops": {"trio"},
    "recording": {"trio"},
    "headless": {"trio"},
    "demo": {"trio"},
    "cli": {"trio"},
    "monitor": {"textual"},
    "monitor/widgets": {"textual"},
    "monitor/screens": {"textual"},
}
# Modules that may use another framework than their unit's.
OWN_FRAMEWORKS: dict[str, set[str]] = {
    "monitor/guest.py": {"trio"},  # the trio server as a guest in the monitor's event loop
}
# In those units, the modules that hold types or pure logic, which import neither.
PURE = [
    "server/events.py",
    "server/config.py",
    "server/clients.py",
    "server/commands.py",
    "server/access.py",
    "server/refusals.py",
    "server/rules.py",
    "server/responder.py",
    "server/tls.py",
    "server/binding.py",
    "ops/systemd.py",
    "server/framing.py",
    "server/tap.py",
    "server/faults.py",
    "control/paths.py",
    "control/protocol.py",
    "control/client.py",
    "headless/log.py",
    "monitor/source.py",
    "monitor/gc_pace.py",
    "monitor/remote.py",
    "monitor/terminal.py",
    "monitor/options.py",
    "demo/script.py",
]
ENGINES = {"trio", "textual"}


def name(path: Path) -> str:
    return str(path.relative_to(PACKAGE))


MODULES = sorted(PACKAGE.rglob("*.py"))
BY_DOTTED = {
    ".".join(("tui_echo", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__"): path
    for path in MODULES
}


def unit(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return path.stem if len(parts) == 1 else "/".join(parts[:-1])


def imported_names(source: str, package: str) -> Iterator[str]:
    """Every dotted name a module's source imports, anywhere in it (``from a import b`` gives ``a`` and
    ``a.b``); ``package`` is the module's own package, for relative imports."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0]
                base = f"{parent}.{base}" if base else parent
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def names_imported_by(module: Path) -> Iterator[str]:
    return imported_names(module.read_text(), ".".join(("tui_echo", *module.relative_to(PACKAGE).parent.parts)))


def package_imports(module: Path) -> set[Path]:
    """The package's modules that ``module`` names in an import (a package's name means its __init__)."""
    return {BY_DOTTED[dotted] for dotted in names_imported_by(module) if dotted in BY_DOTTED} - {module}


def loaded_with(path: Path) -> set[Path]:
    """Importing a module runs its packages' __init__ modules too."""
    parents = path.relative_to(PACKAGE).parents
    return {PACKAGE / parent / "__init__.py" for parent in parents} - {path}


def import_graph() -> dict[Path, set[Path]]:
    return {module: {m for one in package_imports(module) for m in {one} | loaded_with(one)} for module in MODULES}


def cycles(graph: dict[Path, set[Path]]) -> list[list[str]]:
    """The graph's strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[Path, int] = {}
    low: dict[Path, int] = {}
    stack: list[Path] = []
    found: list[list[str]] = []

    def visit(node: Path) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(name(member))
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


# ---- the rules ----------------------------------------------------------------------------------


def test_every_module_falls_under_a_rule_and_every_rule_names_a_unit() -> None:
    units = {unit(path) for path in MODULES}
    assert units - set(MAY_IMPORT) == set(), "add a row to MAY_IMPORT for each new folder or top-level module"
    assert set(MAY_IMPORT) - units == set(), "a row of MAY_IMPORT names a folder or module that is gone"
    assert set(FRAMEWORKS) <= units
    assert [own for own in OWN_FRAMEWORKS if not (PACKAGE / own).is_file()] == []
    assert [pure for pure in PURE if not (PACKAGE / pure).is_file()] == []
    for allowed in MAY_IMPORT.values():
        assert allowed <= units
    for some_unit, extra in MAY_ALSO_IMPORT.items():
        assert some_unit in units and [module for module in extra if not (PACKAGE / module).is_file()] == []
    assert set(ABOVE) <= units


def test_no_module_imports_another_unit_it_may_not() -> None:
    wrong = [
        f"{name(module)} imports {name(target)}"
        for module in MODULES
        for target in sorted(package_imports(module))
        if unit(target) != unit(module)
        and unit(target) not in MAY_IMPORT[unit(module)]
        and name(target) not in MAY_ALSO_IMPORT.get(unit(module), set())
    ]
    assert wrong == []


@pytest.mark.parametrize("folder", sorted(ABOVE))
def test_nothing_in_the_monitor_imports_upward(folder: str) -> None:
    upward = {
        name(module): sorted(dotted for dotted in set(names_imported_by(module)) if dotted.startswith(ABOVE[folder]))
        for module in MODULES
        if unit(module) == folder
    }
    assert {module: found for module, found in upward.items() if found} == {}


def test_a_mode_handler_never_reaches_the_whole_server() -> None:
    wrong = [
        f"{name(module)} imports {dotted}"
        for module in MODULES
        if unit(module) == "server/modes"
        for dotted in sorted(set(names_imported_by(module)))
        if dotted.startswith(NOT_FOR_MODES)
    ]
    assert wrong == []


def sub_units(of: str) -> set[str]:
    return {other for other in MAY_IMPORT if other.startswith(f"{of}/")}


def test_the_rules_table_has_no_circle() -> None:
    # A folder's sub-folders are its parts (server/server.py picks a handler from server/modes, which uses
    # the connection below it): those edges stay out of this check; the module-level one covers them.
    graph = {unit_name: allowed - {unit_name} - sub_units(unit_name) for unit_name, allowed in MAY_IMPORT.items()}
    edges: dict[Path, set[Path]] = {PACKAGE / u: {PACKAGE / other for other in allowed} for u, allowed in graph.items()}
    assert cycles(edges) == []


def test_the_package_has_no_import_cycle_lazy_and_type_checking_imports_included() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_sees_lazy_and_type_checking_imports_and_finds_a_circle() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from tui_echo.server.events import ServerEvent\n"
        "def run():\n    from tui_echo.cli import main\n    from . import log\n"
    )
    names = set(imported_names(source, "tui_echo.headless"))
    assert {"tui_echo.server.events", "tui_echo.cli.main", "tui_echo.headless.log"} <= names
    a, b, c, d = (PACKAGE / f"{letter}.py" for letter in "abcd")
    assert cycles({a: {b}, b: {c}, c: {a}, d: {a}}) == [["a.py", "b.py", "c.py"]]
    assert cycles({a: {b}, b: set(), c: {a, b}, d: set()}) == []


def engines_of(module: Path) -> set[str]:
    return {dotted.split(".")[0] for dotted in names_imported_by(module)} & ENGINES


@pytest.mark.parametrize("module", MODULES, ids=name)
def test_trio_and_textual_only_where_the_table_allows(module: Path) -> None:
    used = engines_of(module)
    allowed = set() if name(module) in PURE else OWN_FRAMEWORKS.get(name(module), FRAMEWORKS.get(unit(module), set()))
    assert used <= allowed
    assert used != ENGINES, "trio and Textual in one module"


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


def test_the_stylesheet_sits_beside_the_app_module() -> None:
    from tui_echo.monitor.app import MonitorApp

    assert (PACKAGE / "monitor" / str(MonitorApp.CSS_PATH)).is_file()


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
    assert not {"trio", "textual", "tui_echo.server.server", "tui_echo.control.listener"} & set(loaded)


MAX_LINES = 450  # no exceptions: a module that grows past it is split


def test_no_module_is_over_450_lines() -> None:
    long = {name(path): lines for path in MODULES if (lines := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


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
