#!/usr/bin/env bash
# Sets up (scripts/setup.sh), then lints and runs the whole test suite. Tests start their own
# redis-server instances on free ports and their own Celery worker processes.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/ruff check service workers models common companion training tests bench scripts moderation_client examples
.venv/bin/mypy service workers models common companion training moderation_client examples
.venv/bin/lint-imports
exec .venv/bin/python -m pytest "$@"
