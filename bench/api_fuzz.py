"""Property-based run of the engine's HTTP API (schemathesis): every check, stateful phase included.

Starts a fresh engine (its own state folder, allowed to use one temporary folder), saves its OpenAPI schema,
and runs ``schemathesis run`` against it with this file as the hooks module: generate jobs the fuzzer makes
valid are shrunk to one case on a 16-voxel grid, so accepted jobs cost a second, not hours. Prints the
command, schemathesis' summary and the wall time; exits with schemathesis' exit code (0: no failure).

Usage: python bench/api_fuzz.py [--max-examples 100] [--seed 1] [--phases examples,coverage,fuzzing,stateful]
Results: bench/results/api_fuzz.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import schemathesis

HERE = Path(__file__).resolve().parent


@schemathesis.hook
def before_call(context, case, kwargs) -> None:
    """Shrink valid generate jobs to one tiny case (the fuzzer tests the API, not the phantom's speed)."""
    body = case.body
    if isinstance(body, dict) and body.get("kind") == "generate" and isinstance(body.get("params"), dict):
        body["params"].update(n=1, shape=16, spacing=8)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=100, help="cases per operation and phase (default 100)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    args = parser.parse_args()
    from MedSynthLib.launcher import EngineProcess

    with tempfile.TemporaryDirectory(prefix="medsynth-fuzz-") as tmp:
        root = Path(tmp).resolve()
        (root / "allowed").mkdir()
        engine = EngineProcess.start(
            sys.executable, state_dir=root / "state", device="cpu", timeout=120, env=dict(os.environ),
            extra_args=["--allow-dir", str(root / "allowed"), "--cancel-grace", "1"],
        )
        try:
            client = engine.client(timeout=60)
            schema = root / "openapi.json"
            schema.write_text(json.dumps(client._json("GET", "/openapi.json")))
            command = [
                str(Path(sys.executable).parent / "schemathesis"), "run", str(schema), "--url", engine.url,
                "-H", f"Authorization: Bearer {client.token}", "--checks", "all", "--phases", args.phases,
                "--max-examples", str(args.max_examples), "--seed", str(args.seed), "--workers", "1",
                "--suppress-health-check", "all", "--no-color",
            ]
            env = dict(os.environ, SCHEMATHESIS_HOOKS="api_fuzz",
                       PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
            shown = " ".join(c if not c.startswith("Authorization") else "'Authorization: Bearer ***'" for c in command)
            print(f"# {platform.node()} {os.cpu_count()} cpus, python {platform.python_version()}, schemathesis "
                  f"{schemathesis.__version__}\n# {shown}", flush=True)
            started = time.monotonic()
            result = subprocess.run(command, env=env, cwd=root)
            print(f"# wall time {time.monotonic() - started:.0f} s; engine alive after the run: {engine.alive()}")
            return result.returncode
        finally:
            engine.stop(timeout=15)


if __name__ == "__main__":
    sys.exit(main())
