"""Let a warm engine reuse the memory one case frees for the next, and give it back once the engine is idle.

A full-size phantom case allocates and frees about 2 GB in tensors of 25-75 MB. glibc serves blocks that large
with mmap and unmaps them on free (and a job thread's own arena cannot hold them at all), so every tensor of every
case is faulted in and zeroed by the kernel again: about a third of a warm render's CPU time. ``retain_freed_memory``
has glibc serve them from the one main heap and keep what is freed there, so the next tensor, and the next case,
reuses pages already mapped. ``IdleRelease`` returns the kept memory to the system once no job has run for a while,
so an idle engine does not hold a render's peak (memory stays bounded by the largest job's peak meanwhile).
With another C library (macOS, Windows, musl) both do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from collections.abc import Callable

__all__ = ["retain_freed_memory", "release_freed_memory", "IdleRelease"]

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
_NEVER = 2**31 - 1


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def retain_freed_memory() -> bool:
    """Serve every allocation from one heap and keep freed memory in it; True where this C library allows it.

    Call it early in the process, before worker threads allocate (a thread that already has its own arena keeps it).
    """
    libc = _glibc()
    if libc is None:
        return False
    # One arena: job threads allocate where freed blocks are kept. No mmap: large blocks come from that heap too.
    # No automatic trim: freeing keeps the pages for the next tensor; ``release_freed_memory`` returns them.
    return all(libc.mallopt(param, value) == 1 for param, value in ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _NEVER)))


def release_freed_memory() -> None:
    """Return the heap's free pages to the system (glibc's malloc_trim); the process keeps what it still uses."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


class IdleRelease:
    """A daemon thread that calls ``release_freed_memory`` once the engine has been idle for ``after_s`` seconds.

    ``last_active()`` gives the ``time.monotonic()`` of the last moment a job ran (now while one runs), or None
    before the first. It releases once per idle spell: what a later job frees is kept until the next one.
    """

    def __init__(self, last_active: Callable[[], float | None], after_s: float = 30.0, poll_s: float = 1.0) -> None:
        self._last_active, self._after, self._poll = last_active, after_s, poll_s
        self._stop = threading.Event()
        self.releases = 0
        self._thread = threading.Thread(target=self._watch, name="medsynth-idle-release", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        released_after = None
        while not self._stop.wait(self._poll):
            active = self._last_active()
            if active is None or active == released_after or time.monotonic() - active < self._after:
                continue
            release_freed_memory()
            released_after = active
            self.releases += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
