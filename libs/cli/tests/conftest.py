"""Helpers shared by the marquee CLI tests."""

from __future__ import annotations

from collections.abc import Callable

import psutil
import pytest

StillRunning = Callable[..., list[psutil.Process]]


@pytest.fixture
def still_running() -> StillRunning:
    """``still_running(processes, timeout=s)``: those still running after ``timeout``.

    A zombie counts as gone: where PID 1 does not reap orphans (some containers), a
    stopped grandchild stays a zombie forever.
    """

    def running(process: psutil.Process) -> bool:
        try:
            return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def check(processes: list[psutil.Process], *, timeout: float) -> list[psutil.Process]:
        _, alive = psutil.wait_procs(processes, timeout=timeout)
        return [process for process in alive if running(process)]

    return check
