"""Verdict lifecycle after rescans: stale/missing review-queue entries and version-filter convergence.

    python -m bench.bench_lifecycle --n 60
Starts a private stack (redis-server, a text+webhooks worker, a rescan worker, the gateway) on a tiny random text
model (training.text.tiny) and the test policy, and prints counts measured through the public API:
  A  review -> allow: items still listed by GET /v1/reviews although a rescan made them `allow` (stale);
  B  allow -> review: items a rescan made `review` that GET /v1/reviews does not list (missing);
  C  convergence: two identical rescans with `policy_version_not=<current>` after a policy bump that changes no
     decision: how many items each one re-scores (the second should re-score 0).
Counts, not timings: the numbers do not depend on machine load. Run it before and after a change to compare.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.stack import ROOT, private_stack

ADMIN = {"Authorization": "Bearer bench-admin"}


def categories() -> list[str]:
    from models.text.labels import CATEGORIES

    return list(CATEGORIES)


def thresholds(review: float, block: float) -> dict[str, dict[str, float]]:
    return {c: {"review": review, "block": block} for c in categories()}


REVIEW_ALL = (0.0, 1.0)   # every score >= 0 -> review; nothing reaches block 1.0 (sigmoid < 1)
ALLOW_ALL = (1.0, 1.0)    # nothing reaches review


def poll(fn: Any, deadline_s: float = 300.0, interval_s: float = 0.3) -> Any:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = fn()
        if value:
            return value
        time.sleep(interval_s)
    raise TimeoutError("condition not met")


class Api:
    def __init__(self, base: str) -> None:
        self.c = httpx.Client(base_url=base, timeout=60)

    def tenant(self, name: str, policy: tuple[float, float], terms: list[str] | None = None) -> dict[str, str]:
        key = self.c.post("/v1/keys", json={"tenant": name, "role": "platform", "name": "b"}, headers=ADMIN).json()
        self.policy(name, policy, terms)
        return {"Authorization": f"Bearer {key['key']}"}

    def policy(self, name: str, policy: tuple[float, float], terms: list[str] | None = None) -> str:
        body = {"categories": thresholds(*policy), "blocklist_terms": terms or []}
        resp = self.c.put(f"/v1/policies/{name}", json=body, headers=ADMIN)
        resp.raise_for_status()
        return str(resp.json()["id"] if "id" in resp.json() else resp.json().get("version"))

    def submit(self, headers: dict[str, str], n: int, tag: str) -> list[str]:
        items = [{"text": f"{tag} comment number {i}"} for i in range(n)]
        ids = [x["id"] for x in self.c.post("/v1/moderations/batch", json={"items": items}, headers=headers)
               .json()["items"]]
        poll(lambda: all(self.item(headers, i)["status"] == "done" for i in ids))
        return ids

    def item(self, headers: dict[str, str], item_id: str) -> dict[str, Any]:
        return dict(self.c.get(f"/v1/moderations/{item_id}", headers=headers).json())

    def rescan(self, body: dict[str, Any]) -> dict[str, Any]:
        job_id = self.c.post("/v1/rescans", json=body, headers=ADMIN).json()["id"]
        return dict(poll(lambda: (lambda j: j if j["status"] in ("done", "cancelled", "failed") else None)(
            self.c.get(f"/v1/rescans/{job_id}", headers=ADMIN).json())))

    def queue(self, tenant: str) -> set[str]:
        out: set[str] = set()
        cursor = None
        while True:
            params: dict[str, Any] = {"tenant": tenant, "limit": 200, **({"cursor": cursor} if cursor else {})}
            page = self.c.get("/v1/reviews", params=params, headers=ADMIN).json()
            out |= {i["id"] for i in page["items"]}
            cursor = page["next_cursor"]
            if not cursor:
                return out


def run(base: str, n: int) -> dict[str, int]:
    api = Api(base)
    out: dict[str, int] = {}
    # A: review -> allow.
    ha = api.tenant("bencha", REVIEW_ALL)
    a_ids = api.submit(ha, n, "a")
    out["a_queued_before"] = len(api.queue("bencha") & set(a_ids))
    api.policy("bencha", ALLOW_ALL)
    out["a_changed"] = api.rescan({"tenant": "bencha"})["changed"]
    queued = api.queue("bencha")
    out["a_stale"] = sum(1 for i in a_ids if i in queued and api.item(ha, i)["decision"] != "review")
    # B: allow -> review.
    hb = api.tenant("benchb", ALLOW_ALL)
    b_ids = api.submit(hb, n, "b")
    api.policy("benchb", REVIEW_ALL)
    out["b_changed"] = api.rescan({"tenant": "benchb"})["changed"]
    queued = api.queue("benchb")
    out["b_missing"] = sum(1 for i in b_ids if i not in queued and api.item(hb, i)["decision"] == "review")
    # C: convergence of policy_version_not after a bump that changes no decision.
    hc = api.tenant("benchc", REVIEW_ALL)
    c_ids = api.submit(hc, n, "c")
    api.policy("benchc", REVIEW_ALL, terms=["zzqxunused"])
    current = api.item(hc, c_ids[0])  # still the old version: the rescan has not run yet
    pol = api.c.get("/v1/policies/benchc", headers=ADMIN).json()
    version = pol.get("id") or pol.get("version")
    assert version and version != current["policy_version"], (version, current["policy_version"])
    for run_no in (1, 2):
        job = api.rescan({"tenant": "benchc", "policy_version_not": version})
        out[f"c_rescan{run_no}_total"] = job["total"]
        out[f"c_rescan{run_no}_rescored"] = job["changed"] + job["unchanged"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=60, help="items per scenario")
    args = parser.parse_args()
    from training.text.tiny import build_tiny_checkpoint

    model = build_tiny_checkpoint(Path(tempfile.mkdtemp(prefix="bench-tiny-")) / "tiny", seed=0)
    env = {"MOD_TEXT_MODEL_PATH": str(model), "MOD_BOOTSTRAP_ADMIN_KEY": "bench-admin",
           "MOD_TORCH_THREADS": "1", "MOD_POLICY_PATH": str(ROOT / "tests" / "support" / "policy.yaml")}
    with private_stack(env, [("text,webhooks", 1), ("rescan", 1)]) as (base, _):
        counts = run(base, args.n)
    for k, v in counts.items():
        print(f"{k:24s} {v}")


if __name__ == "__main__":
    main()
