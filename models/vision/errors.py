"""Owns the media error hierarchy and its stable codes (pure Python: the gateway may import it)."""

from __future__ import annotations

# Stable codes: clients and the verdict store branch on these, never on messages.
CODES: frozenset[str] = frozenset({
    "empty_file",
    "unsupported_format",
    "truncated_image",
    "corrupt_image",
    "decompression_bomb",
    "image_too_small",
    "too_many_frames",
    "corrupt_video",
    "no_frames",
    "video_too_long",
    "unsupported_codec",
    "audio_only",
})


class MediaError(Exception):
    """Bad input: the item is rejected with `code`; never retried (the same bytes fail the same way)."""

    def __init__(self, code: str, message: str) -> None:
        if code not in CODES:
            raise ValueError(f"unknown media error code {code!r}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ImageError(MediaError):
    """A still or animated image could not be accepted."""


class VideoError(MediaError):
    """A video container or stream could not be accepted."""
