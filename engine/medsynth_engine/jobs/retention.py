"""Removing finished jobs: one on request (``DELETE /jobs/{id}``), old ones by the retention setting, and job
folders that no record names (an engine killed between making a job's folder and recording the job).

A job's files are its folder under the state folder (task, log, worker files, and the output when the job wrote it
there, the default). An output the user pointed elsewhere (``out``) is the user's and stays.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .store import TERMINAL_STATES, JobConflict, JobNotFound, JobStore

__all__ = ["RETAINED_STATES", "Retention", "delete_job", "apply_retention", "remove_orphan_folders"]

_JOB_FOLDER = re.compile(r"^job-[0-9a-f]{12}$")


@dataclass(frozen=True)
class Retention:
    """How many finished jobs to keep (``keep_jobs``, newest first) and for how long (``keep_days``); None keeps all."""

    keep_jobs: int | None = None
    keep_days: float | None = None


#: What retention removes: jobs that are over. Interrupted and cancelled jobs can still resume (``POST
#: /jobs/{id}/resume``), so retention leaves them; ``DELETE /jobs/{id}`` removes them on request.
RETAINED_STATES = frozenset({"succeeded", "failed"})


def delete_job(store: JobStore, jobs_dir: Path, job_id: str) -> None:
    """Remove a finished job's record and its folder; refuses a queued or running one (409), an unknown one (404)."""
    job = store.get(job_id)
    if job is None:
        raise JobNotFound(f"There is no job '{job_id}'.")
    if job["state"] not in TERMINAL_STATES:
        raise JobConflict(f"Job {job_id} is {job['state']}; cancel it first, then delete it.")
    folder = Path(jobs_dir) / job_id
    store.delete(job_id)  # the record first: a kill between the two leaves an orphan folder, removed at the next start
    shutil.rmtree(folder, ignore_errors=True)


def apply_retention(store: JobStore, jobs_dir: Path, retention: Retention, now: float | None = None) -> list[str]:
    """Delete the succeeded and failed jobs the retention setting no longer keeps; returns their ids."""
    if retention.keep_jobs is None and retention.keep_days is None:
        return []
    now = time.time() if now is None else now
    finished = [job for job in store.list(limit=1_000_000) if job["state"] in RETAINED_STATES]  # newest first
    doomed = []
    for rank, job in enumerate(finished):
        too_many = retention.keep_jobs is not None and rank >= retention.keep_jobs
        too_old = retention.keep_days is not None and now - job["updated"] > retention.keep_days * 86400
        if too_many or too_old:
            doomed.append(job["id"])
    for job_id in doomed:
        try:
            delete_job(store, jobs_dir, job_id)
        except (JobNotFound, JobConflict):  # deleted or resumed meanwhile
            pass
    return doomed


def remove_orphan_folders(store: JobStore, jobs_dir: Path) -> list[str]:
    """Remove job folders that no job record names; returns their names."""
    jobs_dir = Path(jobs_dir)
    if not jobs_dir.is_dir():
        return []
    orphans = [p for p in jobs_dir.iterdir() if p.is_dir() and _JOB_FOLDER.match(p.name) and store.get(p.name) is None]
    for folder in orphans:
        shutil.rmtree(folder, ignore_errors=True)
    return sorted(p.name for p in orphans)
