"""The worker container healthcheck reads the real heartbeat records a worker process writes."""

from __future__ import annotations

import json

import redis

from tests.support.redis_server import RedisServer
from workers.healthcheck import healthy


def test_healthy_only_with_a_fresh_beat_of_this_host_with_models_loaded(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url(9))
    client.flushdb()
    assert not healthy(client, "box1")
    client.set("mod:hb:text@box2:10", json.dumps({"models": {"text": {"ok": True}}}), ex=15)
    assert not healthy(client, "box1"), "another host's worker says nothing about this one"
    client.set("mod:hb:text@box1:11", json.dumps({"models": {"text": {"ok": False, "error": "bad checkpoint"}}}))
    assert not healthy(client, "box1"), "a child that could not load its model is not healthy"
    client.set("mod:hb:text@box1:12", json.dumps({"models": {"text": {"ok": True}}}), ex=15)
    assert healthy(client, "box1")
