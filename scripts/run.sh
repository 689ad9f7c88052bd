#!/usr/bin/env bash
# Sets up (scripts/setup.sh), then runs the whole service on its embedded defaults on this machine:
# Redis (started with AOF if none answers), a text+webhooks worker, a media worker, a rescan worker,
# the companion app (:8001) and the gateway (:8000). Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
VPY=.venv/bin/python
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
HOST="${MOD_HOST:-127.0.0.1}"; PORT="${MOD_PORT:-8000}"
REDIS_URL="${MOD_REDIS_URL:-redis://127.0.0.1:6379/0}"
mkdir -p var/log var/redis
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if ! $VPY -c "import redis,sys; redis.Redis.from_url('$REDIS_URL', socket_connect_timeout=1).ping()" 2>/dev/null; then
  echo "==> no Redis at $REDIS_URL; starting redis-server with AOF in var/redis"
  redis-server --port 6379 --bind 127.0.0.1 --dir "$PWD/var/redis" --appendonly yes --save "" \
    --logfile "$PWD/var/log/redis.log" &
  PIDS+=($!)
  for _ in $(seq 50); do redis-cli -p 6379 ping >/dev/null 2>&1 && break; sleep 0.2; done
fi

start() { local name=$1; shift; "$@" >"var/log/$name.log" 2>&1 & PIDS+=($!); echo "    $name (pid $!, log var/log/$name.log)"; }
echo "==> starting workers and apps"
start worker-text $VPY -m celery -A workers.app worker -Q text,webhooks -c "${MOD_TEXT_CONCURRENCY:-1}" -n text@%h
start worker-media $VPY -m celery -A workers.app worker -Q media -c 1 -n media@%h
start worker-rescan $VPY -m celery -A workers.app worker -Q rescan -c 1 -n rescan@%h
start companion $VPY -m uvicorn companion.app:app --host "$HOST" --port 8001
start companion-refit $VPY -m celery -A companion.tasks worker -B -Q companion -c 1 -n companion@%h -s var/log/companion-beat-schedule
echo "==> gateway on http://$HOST:$PORT — API docs: http://$HOST:$PORT/docs (companion: http://$HOST:8001/docs)"
echo "    dev keys: admin 'dev-admin-key', platform 'dev-platform-key', moderator 'dev-moderator-key' (tenant demo)"
$VPY -m uvicorn --factory service.gateway.app:create_app --host "$HOST" --port "$PORT" --timeout-graceful-shutdown 15 &
PIDS+=($!)
wait "${PIDS[-1]}"
