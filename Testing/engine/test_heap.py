"""A process that retains freed memory reuses it (no page faults for the next tensor of a job thread), and gives it
back when told; each check runs in a fresh interpreter, since malloc's settings belong to the whole process."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from medsynth_engine.heap import IdleRelease

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings: Linux only")

# Runs a case-like sequence of large tensors (25-100 MB, freed in another order than made) eight times in a job-like
# thread; prints each run's page faults and the resident memory before and after release_freed_memory().
_PROBE = """
import json, resource, sys, threading
from medsynth_engine.heap import release_freed_memory, retain_freed_memory
retained = retain_freed_memory() if sys.argv[1] == "retain" else False
import torch
out = {"retained": retained, "faults": []}
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 >> 20
def case():
    a = torch.ones(6_400_000)
    b = torch.ones(3, 6_400_000)
    c = a * 2.0
    del a
    d = torch.stack([c, c, c, c])
    del b
    return float(d.sum(0)[0])
def job():
    for _ in range(8):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        case()
        out["faults"].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    out["kept_mb"] = rss_mb()
    release_freed_memory()
    out["released_mb"] = rss_mb()
thread = threading.Thread(target=job)
thread.start()
thread.join()
print(json.dumps(out))
"""


def _probe(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_retaining_process_reuses_freed_memory_and_gives_it_back_on_release():
    plain, kept = _probe("plain"), _probe("retain")
    assert kept["retained"] is True
    assert plain["faults"][0] > 40_000  # the pages a case touches (about 230 MB of tensors)
    # The default faults every case's tensors in afresh; retained, later cases mostly reuse pages earlier ones freed
    # (how much varies with malloc's free lists: from all of them to three in five).
    later = [sum(run["faults"][4:]) / 4 for run in (plain, kept)]
    assert later[0] > plain["faults"][0] // 2
    assert later[1] < 0.6 * later[0]
    assert kept["kept_mb"] - kept["released_mb"] >= 100  # released: what was kept goes back to the system


def test_idle_release_waits_for_the_idle_spell_and_releases_once_per_spell():
    now = {"t": None}
    release = IdleRelease(lambda: now["t"], after_s=0.3, poll_s=0.02)
    try:
        time.sleep(0.2)
        assert release.releases == 0  # no job yet: nothing to give back
        now["t"] = time.monotonic()
        time.sleep(0.1)
        assert release.releases == 0  # idle, but not long enough
        time.sleep(0.5)
        assert release.releases == 1
        time.sleep(0.3)
        assert release.releases == 1  # the same idle spell: once
        now["t"] = time.monotonic()  # another job ended
        time.sleep(0.6)
        assert release.releases == 2
    finally:
        release.stop()
