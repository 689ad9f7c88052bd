#!/usr/bin/env bash
# Creates .venv with the pinned dependencies (torch first, CPU wheel), installs redis-server if missing,
# and prepares the offline models/data. Idempotent: re-running only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
  || { echo "Python 3.11 is required (found $("$PY" --version))" >&2; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }
apt_install() {
  command -v apt-get >/dev/null 2>&1 || { echo "please install: $*" >&2; return 1; }
  [ -n "${APT_UPDATED:-}" ] || { as_root apt-get update -qq; APT_UPDATED=1; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

if ! command -v redis-server >/dev/null 2>&1; then
  echo "==> installing redis-server"
  apt_install redis-server
fi

# The console's browser tests drive Debian's Chromium through Playwright (never `playwright install`).
if [ ! -x /usr/bin/chromium ]; then
  echo "==> installing chromium (browser tests)"
  apt_install chromium chromium-driver
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PY" -m venv .venv 2>/dev/null || { apt_install python3-venv python3.11-venv || true; rm -rf .venv; "$PY" -m venv .venv; }
fi
VPY=.venv/bin/python
STAMP=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$STAMP" ]; then
  echo "==> installing Python dependencies"
  $VPY -m pip install -q --upgrade pip
  # torch first and pinned: any looser spec pulls a multi-GB CUDA build.
  $VPY -m pip install -q torch==2.13.0
  $VPY -m pip install -q -e '.[dev]'
  rm -f .venv/.installed-*
  touch "$STAMP"
fi

echo "==> preparing models and data (cached under var/)"
$VPY -m scripts.prepare
