"""Redis Cluster: with MOD_REDIS_HASH_TAG the store's operations (create, complete, review claim/decide, appeals,
rescans, stats, rate limits, idempotency, keys, policies) run on a real 3-primary cluster; without the tag the
same multi-key scripts are refused, which is what the tag is for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import RedisClusterNodes
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    nodes = RedisClusterNodes(tmp_path_factory.mktemp("cluster")).start()
    yield nodes
    nodes.stop()


def run_ops(seed: str, tag: str, *extra: str) -> dict[str, object]:
    # A fresh process: key names are fixed when service.store.keys is imported.
    env = {**os.environ, "MOD_REDIS_HASH_TAG": tag}
    proc = subprocess.run([sys.executable, "-m", "tests.support.cluster_ops", seed, *extra], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_store_operations_run_on_a_cluster_with_the_hash_tag(cluster: RedisClusterNodes) -> None:
    out = run_ops(cluster.url(), "acme-prod")
    assert out["ran"] == ["one_slot", "create", "idempotency", "back_pressure", "ready_text", "complete", "blocked",
                          "outbox", "notify", "metrics", "audit", "indexes", "verdict_cache", "deliveries",
                          "review_claim", "review_decide", "appeal", "rescan_plan", "rescan_apply", "rescan_finish",
                          "stats", "ratelimit", "apikeys", "policies"], out


def test_two_deployments_with_different_tags_share_one_cluster(cluster: RedisClusterNodes) -> None:
    # Tags are how a cluster is shared out: each deployment (tenant group, region) owns its slot.
    a, b = run_ops(cluster.url(), "groupa"), run_ops(cluster.url(), "groupb")
    assert a["slot"] != b["slot"]


def test_without_the_tag_multi_key_scripts_are_refused(cluster: RedisClusterNodes) -> None:
    out = run_ops(cluster.url(), "", "--no-tag")
    assert out["refused"] is True, out


def test_gateway_and_worker_run_with_the_store_on_a_cluster(cluster: RedisClusterNodes, tiny_model: Path,
                                                             tmp_path: Path) -> None:
    """MOD_REDIS_CLUSTER: the whole stack (gateway, a text worker) on the cluster; the broker is a plain Redis."""
    broker = RedisServer(workdir=tmp_path / "broker")
    broker.start()
    try:
        out = run_ops(cluster.url(), "stack", "--stack", broker.url(0), str(tiny_model), str(tmp_path))
    finally:
        broker.stop()
    assert out["ran"] == ["worker", "readyz", "batch", "idempotent_replay", "wait", "verdicts", "list", "metrics"]
