"""Settings section for image/video moderation (env: MOD_MEDIA__<FIELD>). Torch-free: the gateway imports it."""

from __future__ import annotations

from pydantic import BaseModel


class MediaSettings(BaseModel):
    """Upload limits and sampling options for the media queue; nested under Settings.media."""

    max_image_bytes: int = 20 * 1024 * 1024
    max_video_bytes: int = 500 * 1024 * 1024
