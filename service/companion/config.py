"""Settings section for the companion app (env: MOD_COMPANION__<FIELD>). Torch-free: the gateway imports it."""

from __future__ import annotations

from pydantic import BaseModel


class CompanionSettings(BaseModel):
    """Companion (recommendations + FAQ) settings; nested under Settings.companion."""

    # Moderation link: recommendations skip catalogue items whose external id is blocked for this tenant.
    tenant: str = "demo"
    external_id_format: str = "movie:{item_id}"
