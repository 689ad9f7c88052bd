"""Owns the rescan request model: the one filter definition the API (`POST /v1/rescans`) and the CLI both validate.

Keeping it in core (not in the gateway route) lets `python -m service.cli rescan start` refuse exactly what the API
refuses, with the same error codes, before a job record is ever created.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.core.errors import valid_unicode


class RescanFilter(BaseModel):
    """Which stored items to re-evaluate with the current model and policy (all conditions must hold).

    Filters apply to every item, whatever its status: an unfinished item has no decision and no versions, so a
    `decision` filter leaves it out and a `kind` filter compares its kind like any other item's.
    """

    # strict: a JSON `false` or `"1"` is not a time or a count (lax mode would coerce it and run a wrong rescan).
    model_config = ConfigDict(extra="forbid", strict=True)
    kind: Literal["text", "image", "video"] | None = None
    tenant: str | None = None
    # Finite only: the filter is echoed back in every job view, and NaN/Infinity cannot be written as JSON.
    since: float | None = Field(None, allow_inf_nan=False, description="created_at >= since (unix seconds)")
    until: float | None = Field(None, allow_inf_nan=False, description="created_at <= until (unix seconds)")
    decision: Literal["allow", "review", "block"] | None = None
    model_version_not: str | None = Field(None, description="Skip items already checked with this model version "
                                          "(`name@version` or `version`), by their verdict or a later rescan.")
    policy_version_not: str | None = Field(None, description="Skip items already checked under this policy id "
                                           "(by their verdict or a later rescan that left them unchanged).")
    scored_before: float | None = Field(None, allow_inf_nan=False,
                                       description="Only items whose verdict is older than this time.")
    limit: int | None = Field(None, ge=1)

    @field_validator("tenant", "model_version_not", "policy_version_not")
    @classmethod
    def _unicode(cls, value: str | None) -> str | None:
        # Same code as the gateway's other text fields (SCHEMA_ERROR_CODES): a lone surrogate cannot be echoed.
        return None if value is None else valid_unicode(value)
