"""Owns re-evaluating image/video items during a rescan (needs the kept blob; expired blobs are skipped)."""

from __future__ import annotations

from typing import Any

from service.store.rescans import RescanStore
from workers import runtime


def rescore_media(rt: runtime.Runtime, jobs: RescanStore, job_id: str, item: dict[str, Any]) -> None:
    jobs.apply(job_id, item["id"], "skipped", audit_event="rescan_skipped",
               audit={"job": job_id, "reason": f"no rescorer for kind {item['kind']}"})
