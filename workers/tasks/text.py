"""Owns the text classification task (thin: the flow lives in workers.pipelines.text)."""

from __future__ import annotations

from service.core.queue import TEXT_TASK
from workers import lifecycle, runtime
from workers.app import app, settings
from workers.base import marks_failure, task_options
from workers.pipelines import text as text_pipeline


@app.task(name=TEXT_TASK, **task_options(settings))
def classify_text(item_ids: list[str]) -> None:
    """Moderate a chunk of text items; idempotent (final items are skipped, verdicts are cached)."""
    rt = runtime.get_runtime()
    with marks_failure(lambda code, msg: lifecycle.fail(rt, item_ids, code, msg), settings.task_soft_time_limit_s):
        text_pipeline.run(rt, item_ids)
