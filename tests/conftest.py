"""The suite's groups and the world each test runs in.

``make test`` runs the suite in parallel (pytest-xdist, ``--dist loadgroup``). Tests are independent
(port 0, their own temporary folders and control sockets), so most go to whichever worker is free. The
kinds below would crowd each other out of the machine's two cores or its memory, so each kind runs on one
worker, one test at a time, beside the lighter tests of the other workers. Mark a test (or a module, with
``pytestmark``) with its kind; the mark also selects the group: ``pytest -m heavy``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

# No time limit per example: a property test asserts what holds, never how fast, and a shared machine can make
# any one example take seconds (a filter test took 294 ms against hypothesis's default 200 ms deadline).
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")

# marker -> the xdist group its tests share (one worker, one at a time)
GROUPS = {
    "terminal": "terminal",  # the installed tui-echo in tmux
    "browser": "browser",  # the system's chromium (tui-echo web)
    "heavy": "heavy",  # thousands of connections, or a real HAProxy, Prometheus, tshark
}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups from the items' marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for marker, group in GROUPS.items():
            if item.get_closest_marker(marker) is not None and item.get_closest_marker("xdist_group") is None:
                item.add_marker(pytest.mark.xdist_group(group))
    # The groups first: each is one long chain on one worker, best started while the others take the rest,
    # not found at the end of the queue (the browser tests sort last by name).
    items.sort(key=lambda item: item.get_closest_marker("xdist_group") is None)


@pytest.fixture(autouse=True)
def private_runtime_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own $XDG_RUNTIME_DIR (0700), so servers register their control sockets where only
    it looks: ``tui-echo list`` or a bare ``ctl`` in one test never sees another test's servers, nor the
    developer's own."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path_factory.mktemp("run")))
    yield
