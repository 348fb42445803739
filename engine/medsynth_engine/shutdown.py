"""Graceful stop on request: what ``POST /shutdown`` does, the same path as Ctrl-C or SIGTERM.

On Windows a process started without a console gets no console control events and ``os.kill(pid, SIGTERM)`` is
TerminateProcess (jobs die instead of ending as interrupted), so clients stop the engine by asking it. The
signal is raised shortly after the response is sent, and uvicorn's own handler runs the lifespan shutdown.
"""

from __future__ import annotations

import signal
import threading

__all__ = ["request_shutdown"]


def request_shutdown(delay: float = 0.2) -> None:
    """Raise SIGINT in this process after ``delay`` seconds (the HTTP response goes out first)."""
    timer = threading.Timer(delay, signal.raise_signal, args=(signal.SIGINT,))
    timer.daemon = True
    timer.start()
