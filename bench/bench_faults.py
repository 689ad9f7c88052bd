"""Fault run: a 3,000-item load through a real gateway and text worker, with the worker's pool child SIGKILLed and
Redis stopped for 10 s in the middle. Prints lost, duplicated, 5xx (and when), and the time to full recovery.

    python -m bench.bench_faults [--items 3000] [--clients 8] [--outage-s 10] [--model tiny|PATH] [--json OUT]

Everything runs on loopback in a temporary directory: a redis-server with AOF (appendfsync always, so a stopped
and restarted Redis keeps every acknowledged write, as a production Redis with AOF does), one text worker
(prefork, concurrency 1), one uvicorn gateway. Clients submit texts (one `external_id` each) and retry the way
docs/api.md says: on 429/503/connection errors, after `Retry-After`, with the same `Idempotency-Key`. No human
action: nothing is restarted by this script except Redis itself after its outage (the fault being simulated).

Counted after the run, through the API:
- lost: an external id whose submission was acknowledged (2xx) but that has no `done` item at the end;
- unsubmitted: an external id no retry got acknowledged before the client deadline (reported separately);
- duplicated: an external id with more than one item, or an item with more than one `verdict` event;
- 5xx: every 5xx answer with the times its request was sent and answered, split into "inside the Redis outage"
  (in flight at some moment from the stop until the restarted Redis answers) and "outside".
Not a test: nothing is asserted; the exit status is 1 when lost, duplicated or outside-5xx are non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.stack import ROOT, free_port, wait_http

KEY = "bench-platform-key"
HEADERS = {"Authorization": f"Bearer {KEY}"}


@dataclass
class Timeline:
    """Monotonic times (s since the start of the load) of the faults and the recovery milestones."""

    t0: float = field(default_factory=time.monotonic)
    marks: dict[str, float] = field(default_factory=dict)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def mark(self, name: str) -> None:
        self.marks[name] = round(self.now(), 2)


@dataclass
class Results:
    lock: threading.Lock = field(default_factory=threading.Lock)
    accepted: dict[str, str] = field(default_factory=dict)  # external id -> item id
    unsubmitted: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors_5xx: list[tuple[float, float, int, str]] = field(default_factory=list)  # (sent, answered, status, code)
    conn_errors: list[float] = field(default_factory=list)
    ok_times: list[float] = field(default_factory=list)


class Redis:
    """A redis-server with AOF in `workdir` that can be stopped and started again on the same port and data."""

    def __init__(self, workdir: Path) -> None:
        self.workdir, self.port = workdir, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        client = redis.Redis(port=self.port, socket_timeout=1)
        for _ in range(400):
            try:
                if client.ping() and client.info("persistence").get("loading", 0) == 0:
                    return
            except redis.exceptions.RedisError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()  # SHUTDOWN: fsyncs the AOF, like a planned restart or a failover
            self.proc.wait(timeout=30)
            self.proc = None


def pool_children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def submit_one(client: httpx.Client, ext: str, res: Results, tl: Timeline, deadline: float) -> None:
    body = {"text": f"bench fault run item {ext}: the film was long but the crowd loved it", "external_id": ext}
    headers = {**HEADERS, "Idempotency-Key": f"idem-{ext}"}
    while time.monotonic() < deadline:
        t = tl.now()
        try:
            resp = client.post("/v1/moderations", json=body, headers=headers)
        except httpx.HTTPError:
            with res.lock:
                res.conn_errors.append(round(t, 2))
            time.sleep(0.5)
            continue
        with res.lock:
            res.statuses[resp.status_code] += 1
            if resp.status_code >= 500:
                code = (resp.json().get("error") or {}).get("code", "") if resp.headers.get(
                    "content-type", "").startswith("application/json") else resp.text[:40]
                res.errors_5xx.append((round(t, 2), round(tl.now(), 2), resp.status_code, code))
        if resp.status_code in (200, 202):
            with res.lock:
                res.accepted[ext] = resp.json()["id"]
                res.ok_times.append(t)
            return
        if resp.status_code in (429, 502, 503, 504):
            time.sleep(min(float(resp.headers.get("retry-after") or 1), 5.0))
            continue
        raise RuntimeError(f"{ext}: unexpected {resp.status_code} {resp.text[:200]}")
    with res.lock:
        res.unsubmitted.append(ext)


def load(base: str, n: int, clients: int, res: Results, tl: Timeline, client_deadline_s: float) -> None:
    todo = iter(range(n))
    lock = threading.Lock()
    deadline = time.monotonic() + client_deadline_s

    def run() -> None:
        with httpx.Client(base_url=base, timeout=15) as client:
            while True:
                with lock:
                    i = next(todo, None)
                if i is None:
                    return
                submit_one(client, f"bench-{i:05d}", res, tl, deadline)

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def faults(redis: Redis, worker: subprocess.Popen[bytes], res: Results, tl: Timeline, n: int,
           outage_s: float, report: dict[str, Any]) -> None:
    """Kill the pool child at ~1/4 of the acknowledged items, stop Redis at ~1/2 for `outage_s`."""
    while len(res.accepted) < n // 4:
        time.sleep(0.05)
    children = pool_children(worker.pid)
    report["killed_child"] = children[0] if children else None
    if children:
        os.kill(children[0], signal.SIGKILL)
    tl.mark("child_killed")
    replaced = False
    while len(res.accepted) < n // 2 or not replaced:
        if not replaced and any(c not in children for c in pool_children(worker.pid)):
            replaced = True
            tl.mark("child_replaced")  # the prefork master forked a new pool child (it then loads the model)
        if not replaced and tl.now() - tl.marks["child_killed"] > 120:
            break
        time.sleep(0.05)
    tl.mark("redis_stopped")
    redis.stop()
    time.sleep(outage_s)
    redis.start()
    tl.mark("redis_restarted")


def audit(base: str, res: Results) -> dict[str, Any]:
    """Per external id: items, final status, verdict events (through the API, after the run)."""
    lost, dup_items, dup_verdicts, not_done = [], [], [], Counter[str]()
    completed: list[float] = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for ext in sorted(res.accepted):
            items = client.get("/v1/moderations", params={"external_id": ext}, headers=HEADERS).json()["items"]
            if len(items) != 1:
                dup_items.append((ext, len(items)))
            done = [it for it in items if it["status"] == "done"]
            if not done:
                lost.append(ext)
                not_done.update(it["status"] for it in items)
            for it in items:
                hist = client.get(f"/v1/moderations/{it['id']}/history", headers=HEADERS).json()
                events = hist["events"] if isinstance(hist, dict) else hist
                verdicts = sum(1 for e in events if e.get("event") == "verdict")
                if verdicts > 1:
                    dup_verdicts.append((it["id"], verdicts))
                if it.get("completed_at"):
                    completed.append(float(it["completed_at"]))
    return {"lost": lost, "not_done_statuses": dict(not_done), "duplicate_items": dup_items,
            "duplicate_verdicts": dup_verdicts, "completed_at": completed}


def wait_all_final(base: str, res: Results, deadline_s: float) -> bool:
    """Poll the pending-items gauge until nothing is queued or processing (or the deadline passes)."""
    end = time.monotonic() + deadline_s
    with httpx.Client(base_url=base, timeout=10) as client:
        while time.monotonic() < end:
            try:
                metrics = client.get("/metrics").text
                line = next((ln for ln in metrics.splitlines() if ln.startswith("moderation_pending_items ")), "")
                if line and float(line.split()[1]) == 0:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=3000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--outage-s", type=float, default=10.0)
    ap.add_argument("--model", default="tiny", help="`tiny` (built here, random weights) or a checkpoint dir")
    ap.add_argument("--client-deadline-s", type=float, default=600.0)
    ap.add_argument("--json", type=Path, help="also write the report here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, Redis data)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    model = args.model
    if model == "tiny":
        from training.text.tiny import build_tiny_checkpoint

        model = str(build_tiny_checkpoint(tmp / "tiny-text", seed=0))
    redis = Redis(tmp / "redis")
    (tmp / "redis").mkdir()
    redis.start()
    url = f"redis://127.0.0.1:{redis.port}/0"
    env = {**os.environ, "MOD_ENV": "test", "MOD_REDIS_URL": url, "MOD_TEXT_MODEL_PATH": model,
           "MOD_BOOTSTRAP_PLATFORM_KEY": KEY, "MOD_BOOTSTRAP_ADMIN_KEY": "bench-admin-key-0000",
           "MOD_DATA_DIR": str(tmp / "var"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "MOD_TORCH_THREADS": "1", "MOD_WORKER_HEARTBEAT_S": "1"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    procs: list[subprocess.Popen[bytes]] = []
    report: dict[str, Any] = {"items": args.items, "clients": args.clients, "outage_s": args.outage_s,
                              "model": args.model if args.model != "tiny" else "tiny random checkpoint"}
    try:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", "text,webhooks", "-c", "1",
             "-n", "faults@%h", "--without-gossip", "--without-mingle", "--loglevel=WARNING"],
            cwd=ROOT, env=env, stdout=open(tmp / "worker.log", "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
            start_new_session=True)
        procs.append(worker)
        gateway = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "service.gateway.app:create_app", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=open(tmp / "gateway.log", "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
            start_new_session=True)
        procs.append(gateway)
        wait_http(base + "/healthz")
        end = time.monotonic() + 300
        while httpx.get(base + "/readyz").status_code != 200:
            if time.monotonic() > end:
                raise TimeoutError(f"stack not ready; logs in {tmp}")
            time.sleep(0.5)

        res, tl = Results(), Timeline()
        injector = threading.Thread(target=faults, args=(redis, worker, res, tl, args.items, args.outage_s, report))
        injector.start()
        load(base, args.items, args.clients, res, tl, args.client_deadline_s)
        tl.mark("load_done")
        injector.join()
        drained = wait_all_final(base, res, 900)
        tl.mark("all_final" if drained else "drain_deadline")
        result = audit(base, res)
        report.update(summarise(res, tl, result, worker))
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        redis.stop()
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    if args.keep:
        print(f"logs and data kept in {tmp}", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    bad = report["lost"] or report["duplicated"] or report["5xx_outside_outage"]
    return 1 if bad else 0


def summarise(res: Results, tl: Timeline, audit_result: dict[str, Any], worker: subprocess.Popen[bytes],
              ) -> dict[str, Any]:
    m = tl.marks
    stop, back = m.get("redis_stopped", float("inf")), m.get("redis_restarted", float("inf"))
    # Strict: a 5xx whose request was in flight at some moment between the stop and the moment the restarted
    # Redis answered pings (sent before `back`, answered after `stop`).
    inside = [e for e in res.errors_5xx if e[1] >= stop and e[0] <= back]
    outside = [e for e in res.errors_5xx if not (e[1] >= stop and e[0] <= back)]
    first_ok_after = min((t for t in res.ok_times if t >= back), default=None)
    # Verdict times are wall-clock (unix) on the item; convert through the offset of now.
    offset = time.time() - time.monotonic() + tl.t0
    done_rel = sorted(t - offset for t in audit_result["completed_at"])
    first_done_after_kill = min((t for t in done_rel if t >= m.get("child_killed", 0)), default=None)
    first_done_after_redis = min((t for t in done_rel if t >= back), default=None)
    return {
        "timeline_s": m,
        "worker_main_alive": worker.poll() is None,
        "pool_children_now": pool_children(worker.pid),
        "acknowledged": len(res.accepted), "unsubmitted": len(res.unsubmitted),
        "lost": len(audit_result["lost"]), "lost_ids": audit_result["lost"][:20],
        "lost_statuses": audit_result["not_done_statuses"],
        "duplicated": len(audit_result["duplicate_items"]) + len(audit_result["duplicate_verdicts"]),
        "duplicate_items": audit_result["duplicate_items"][:20],
        "duplicate_verdicts": audit_result["duplicate_verdicts"][:20],
        "http_statuses": dict(sorted(res.statuses.items())),
        "connection_errors": len(res.conn_errors),
        "5xx_total": len(res.errors_5xx), "5xx_inside_outage": len(inside), "5xx_outside_outage": len(outside),
        "5xx_sent_first_last_s": [min(e[0] for e in res.errors_5xx), max(e[0] for e in res.errors_5xx)]
        if res.errors_5xx else None,
        "5xx_codes": dict(Counter(f"{s} {c}" for _, _, s, c in res.errors_5xx)),
        "5xx_outside_examples": outside[:10],
        "recovery_s": {
            "first_verdict_after_child_kill": _rel(first_done_after_kill, m.get("child_killed")),
            "first_2xx_after_redis_restart": _rel(first_ok_after, back),
            "first_verdict_after_redis_restart": _rel(first_done_after_redis, back),
            "all_final_after_redis_restart": _rel(m.get("all_final"), back),
        },
    }


def _rel(t: float | None, since: float | None) -> float | None:
    return None if t is None or since is None else round(t - since, 2)


if __name__ == "__main__":
    sys.exit(main())
