"""Owns the broker wire format of a task sent without kombu's producer: the Redis list entry that
`Celery.send_task` would LPUSH for it, built by Celery's own protocol-2 builder (`amqp.create_task_message`) and
wrapped in kombu's Redis envelope (JSON body, base64, delivery info), so the gateway can push it on its asyncio
client in one round trip.

Why: with kombu's producer every text submission paid for a thread-pool hop, a new redis-py client object per
publish and the producer's glue, about 1 ms of CPU on the gateway's event-loop process (docs/operations.md, "The
submission hot path"). The envelope here is what kombu 5.7's virtual transport writes for an anonymous-exchange
publish (Celery turns a direct-exchange route into one); `tests/service/test_wire.py` pushes the same task both
ways and compares the entries field by field, so a kombu or Celery upgrade that changes the format fails there.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from typing import Any

from celery import Celery
from kombu.serialization import dumps as serialize
from kombu.utils.json import dumps as json_dumps

DELIVERY_PERSISTENT = 2  # kombu's default delivery mode: what its producer writes for a durable exchange


class TaskWire:
    """Builds Redis list entries for tasks routed to one queue (the queue's list key at priority 0)."""

    def __init__(self, app: Celery, queue: str) -> None:
        self.app = app
        self.queue = queue

    @property
    def key(self) -> str:
        """The list a priority-0 message goes to (kombu's `_q_for_pri` with the priority queue-order strategy)."""
        return self.queue

    def entry(self, name: str, args: Sequence[Any], task_id: str | None = None) -> str:
        task_id = task_id or str(uuid.uuid4())
        headers, properties, body, _ = self.app.amqp.create_task_message(
            task_id, name, list(args), {}, reply_to=self.app.thread_oid, ignore_result=None)
        content_type, content_encoding, data = serialize(body, serializer=self.app.conf.task_serializer)
        raw = data if isinstance(data, bytes) else str(data).encode(content_encoding)
        return str(json_dumps({
            "body": base64.b64encode(raw).decode("ascii"),
            "content-encoding": content_encoding,
            "content-type": content_type,
            "headers": headers,
            "properties": {
                **properties,
                "delivery_mode": DELIVERY_PERSISTENT,
                "delivery_info": {"exchange": "", "routing_key": self.queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }))
