"""The job store: one SQLite file in the engine's state folder, so finished jobs survive any restart.

SQLite commits are atomic and durable (WAL journal), so a SIGKILL at any moment leaves the last committed
state of every job. On opening, jobs that were running are marked ``interrupted`` (their process is gone).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import MedSynthError
from .spec import Conflict, Missing

__all__ = ["JobStore", "JobNotFound", "JobConflict", "TERMINAL_STATES", "LOG_LINES"]

#: States a job cannot leave on its own (queued and running are the others).
TERMINAL_STATES = frozenset({"succeeded", "failed", "cancelled", "interrupted"})
#: Log lines kept in the record (the whole log is in the job's folder).
LOG_LINES = 40

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    log TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    params TEXT NOT NULL,
    output_dir TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    metrics TEXT NOT NULL DEFAULT '{}',
    worker_pid INTEGER,
    worker_started REAL,
    result TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created);
"""
_JSON_FIELDS = ("log", "params", "metrics", "result")
_COLUMNS = (
    "id", "kind", "state", "progress", "message", "log", "error", "params", "output_dir", "created", "updated", "metrics",
    "result",
)


class JobNotFound(Missing):
    """No such job (HTTP 404)."""


class JobConflict(Conflict):
    """The job is in a state that does not allow the request (HTTP 409)."""


class JobStore:
    """Thread-safe access to the jobs table; every change is committed at once."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
            if "result" not in columns:  # a store written before jobs had results (engine 0.1)
                self._db.execute("ALTER TABLE jobs ADD COLUMN result TEXT NOT NULL DEFAULT '{}'")
        except sqlite3.DatabaseError as exc:
            raise MedSynthError(f"The job store {self.path} cannot be opened ({exc}); move it away to start afresh.") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def create(self, kind: str, params: dict[str, Any], output_dir: Path, job_id: str | None = None) -> dict[str, Any]:
        job_id = job_id or new_job_id()
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO jobs (id, kind, state, params, output_dir, created, updated) VALUES (?, ?, 'queued', ?, ?, ?, ?)",
                (job_id, kind, json.dumps(params), str(output_dir), now, now),
            )
        return self.get(job_id)

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _row_to_job(row) if row else None

    def list(self, limit: int = 1000) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM jobs ORDER BY created DESC LIMIT ?", (limit,)
            ).fetchall()
        return [_row_to_job(r) for r in rows]

    def update(self, job_id: str, **fields: Any) -> None:
        """Set columns of one job (JSON columns take Python objects) and its ``updated`` time."""
        if not fields:
            return
        fields["updated"] = time.time()
        names = []
        values = []
        for name, value in fields.items():
            names.append(f"{name} = ?")
            values.append(json.dumps(value) if name in _JSON_FIELDS else value)
        with self._lock:
            self._db.execute(f"UPDATE jobs SET {', '.join(names)} WHERE id = ?", (*values, job_id))

    def append_log(self, job_id: str, lines: list[str]) -> None:
        """Keep the last ``LOG_LINES`` lines in the record."""
        with self._lock:
            row = self._db.execute("SELECT log FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return
            log = (json.loads(row[0]) + list(lines))[-LOG_LINES:]
            self._db.execute("UPDATE jobs SET log = ?, updated = ? WHERE id = ?", (json.dumps(log), time.time(), job_id))

    def delete(self, job_id: str) -> None:
        """Remove one job's record (the caller checks its state and removes its folder)."""
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def worker(self, job_id: str) -> tuple[int | None, float | None]:
        with self._lock:
            row = self._db.execute("SELECT worker_pid, worker_started FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def ids_in_state(self, *states: str) -> list[str]:
        marks = ", ".join("?" for _ in states)
        with self._lock:
            rows = self._db.execute(f"SELECT id FROM jobs WHERE state IN ({marks}) ORDER BY created", states).fetchall()
        return [r[0] for r in rows]


def new_job_id() -> str:
    return "job-" + secrets.token_hex(6)


def _row_to_job(row: tuple) -> dict[str, Any]:
    job = dict(zip(_COLUMNS, row, strict=True))
    for name in _JSON_FIELDS:
        job[name] = json.loads(job[name])
    return job
