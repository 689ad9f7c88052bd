"""Owns the text classification task (thin: the flow lives in workers.pipelines.text)."""

from __future__ import annotations

import logging
from typing import Any

from service.core.queue import TEXT_TASK
from workers import lifecycle, runtime
from workers.app import app, settings
from workers.base import TimeLimits, marks_failure, request_limits, task_options, text_time_limits
from workers.pipelines import text as text_pipeline

log = logging.getLogger(__name__)


@app.task(name=TEXT_TASK, bind=True, **task_options(settings))
def classify_text(self: Any, item_ids: list[str]) -> None:
    """Moderate a chunk of text items; idempotent (final items are skipped, verdicts are cached).

    Time limits follow the work: a chunk too long for the limits it was delivered with is sent again with
    longer ones before anything is scored, and a chunk that still runs out of time (a busy machine) is sent
    again once per doubling of its limit up to the cap; only then are its items failed `timeout`.
    """
    rt = runtime.get_runtime()
    limits = request_limits(self.request, settings)

    def more_time() -> bool:
        grown = text_time_limits(settings, 0, at_least_soft=2 * limits.soft)
        return grown.soft > limits.soft and _resend(self, item_ids, grown, "timed out")

    with marks_failure(lambda code, msg: lifecycle.fail(rt, item_ids, code, msg), limits.soft,
                       on_timeout=more_time):
        needed = text_pipeline.run(rt, item_ids, limits)
        if needed is not None and not _resend(self, item_ids, needed, "too long for its limits"):
            raise RuntimeError("could not re-send a long text task with longer time limits")


def _resend(task: Any, item_ids: list[str], limits: TimeLimits, why: str) -> bool:
    """Publish this task again under `limits` (same queue and priority); the items stay live meanwhile. The
    current message is acked when this delivery returns: a crash in between only delivers twice (idempotent)."""
    priority = (task.request.delivery_info or {}).get("priority")
    try:
        task.apply_async(args=[item_ids], soft_time_limit=limits.soft, time_limit=limits.hard, priority=priority)
    except Exception:  # the broker is away: the caller fails the items instead of leaving them live
        log.exception("text task %s: could not re-send with %gs", task.request.id, limits.soft)
        return False
    log.warning("text task %s %s: re-sent with soft/hard limits %g/%gs (%d items)", task.request.id, why,
                limits.soft, limits.hard, len(item_ids))
    return True
