"""Named crash points, for tests that prove a crash anywhere loses nothing.

``crash_point("booking.tickets-issued")`` does nothing unless the process was started
with ``MARQUEE_CRASH_AT=booking.tickets-issued``; then, the first time it is reached, it
writes ``crash point <name> reached: SIGKILL`` to stderr (so a test can prove the crash
happened there, not somewhere else) and kills its own process with SIGKILL — no
``finally``, no rollback, no flush, exactly as a power cut or the OOM killer would.

Each point sits between two steps whose order matters (after a change was made and
before its transaction commits, say). Production never sets the variable.
"""

from __future__ import annotations

import os
import signal
import sys

ENVIRONMENT_VARIABLE = "MARQUEE_CRASH_AT"
MARKER = "crash point {name} reached: SIGKILL"


def crash_point(name: str) -> None:
    if os.environ.get(ENVIRONMENT_VARIABLE) != name:
        return
    sys.stderr.write(MARKER.format(name=name) + "\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)
