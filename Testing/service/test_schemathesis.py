"""Property-based requests from the engine's own OpenAPI schema (schemathesis), every check, stateful phase included.

A few examples per operation here (``slow``); the big run (over 1,000 cases) is ``python bench/api_fuzz.py``,
with its result in bench/results/api_fuzz.md. Both run the same command against a fresh engine: no 5xx, every
response as documented, every schema-valid request accepted or refused for a reason the schema states
(403, 404, 409), every schema-invalid one refused, and the job links lead to the job, its files and resume.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out

FUZZ = Path(__file__).resolve().parents[2] / "bench" / "api_fuzz.py"


@pytest.mark.slow
def test_a_short_property_based_run_finds_no_failure():
    result = subprocess.run(
        [sys.executable, str(FUZZ), "--max-examples", "4", "--phases", "examples,fuzzing,stateful", "--seed", "3"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "engine alive after the run: True" in result.stdout
