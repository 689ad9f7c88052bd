"""Owns media type detection from magic bytes (pure Python; the gateway calls it on the first upload chunk).

The file name and the client's Content-Type are never trusted: an upload is what its first bytes say it is.
Only formats the workers can decode get kind "image" or "video"; everything else we recognise (documents,
archives, audio, markup, HEIC …) comes back as kind "unknown" with its format named, so the caller can refuse
it with a precise code (`refusal_code`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Enough for every signature below, including the EBML DocType and RIFF/ftyp sub-types.
HEAD_BYTES = 4096

Kind = Literal["image", "video", "unknown"]

IMAGE_FORMATS: frozenset[str] = frozenset({"jpeg", "png", "webp", "gif", "bmp", "tiff"})
VIDEO_FORMATS: frozenset[str] = frozenset({"mp4", "mov", "m4v", "3gp", "webm", "mkv", "avi"})
AUDIO_FORMATS: frozenset[str] = frozenset({"mp3", "wav", "ogg", "flac", "m4a", "aac", "aiff"})


@dataclass(frozen=True)
class MediaType:
    kind: Kind
    fmt: str
    mime: str

    @property
    def accepted(self) -> bool:
        return self.kind in ("image", "video")

    @property
    def is_audio(self) -> bool:
        return self.fmt in AUDIO_FORMATS


UNKNOWN = MediaType("unknown", "unknown", "application/octet-stream")

_MIME = {
    "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif",
    "bmp": "image/bmp", "tiff": "image/tiff", "mp4": "video/mp4", "mov": "video/quicktime",
    "m4v": "video/x-m4v", "3gp": "video/3gpp", "webm": "video/webm", "mkv": "video/x-matroska",
    "avi": "video/x-msvideo", "mp3": "audio/mpeg", "wav": "audio/wav", "ogg": "audio/ogg",
    "flac": "audio/flac", "m4a": "audio/mp4", "aac": "audio/aac", "aiff": "audio/aiff",
    "pdf": "application/pdf", "zip": "application/zip", "gzip": "application/gzip",
    "7z": "application/x-7z-compressed", "rar": "application/vnd.rar", "html": "text/html",
    "svg": "image/svg+xml", "xml": "application/xml", "heic": "image/heic", "avif": "image/avif",
    "ico": "image/vnd.microsoft.icon", "psd": "image/vnd.adobe.photoshop", "jxl": "image/jxl",
    "elf": "application/x-elf", "exe": "application/vnd.microsoft.portable-executable",
    "ogv": "video/ogg", "mpeg": "video/mpeg", "mpegts": "video/mp2t", "flv": "video/x-flv",
}

# ISO-BMFF major brands: audio-only and still-image brands must not pass as video.
_FTYP_AUDIO = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
_FTYP_HEIC = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
_FTYP_AVIF = {b"avif", b"avis"}
# Pre-ftyp QuickTime files start directly with one of these atoms.
_QT_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_BMP_HEADER_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}


def _mt(fmt: str) -> MediaType:
    if fmt in IMAGE_FORMATS:
        kind: Kind = "image"
    elif fmt in VIDEO_FORMATS:
        kind = "video"
    else:
        kind = "unknown"
    return MediaType(kind, fmt, _MIME.get(fmt, "application/octet-stream"))


def _sniff_ftyp(head: bytes) -> MediaType:
    brand = head[8:12]
    # Compatible brands follow the minor version; a HEIC file may carry major brand mif1 + heic.
    size = int.from_bytes(head[0:4], "big")
    compat = {head[i:i + 4] for i in range(16, min(size, len(head), 64), 4)}
    if brand in _FTYP_AUDIO:
        return _mt("m4a")
    if brand in _FTYP_AVIF or (brand == b"mif1" and compat & _FTYP_AVIF):
        return _mt("avif")
    if brand in _FTYP_HEIC:
        return _mt("heic")
    if brand == b"qt  ":
        return _mt("mov")
    if brand in (b"M4V ", b"M4VH", b"M4VP"):
        return _mt("m4v")
    if brand.startswith(b"3g"):
        return _mt("3gp")
    return _mt("mp4")


def _sniff_riff(head: bytes) -> MediaType:
    sub = head[8:12]
    if sub == b"WEBP":
        return _mt("webp")
    if sub == b"AVI ":
        return _mt("avi")
    if sub == b"WAVE":
        return _mt("wav")
    return UNKNOWN


def _sniff_ebml(head: bytes) -> MediaType:
    # The DocType element (0x4282) sits in the EBML header within the first few dozen bytes.
    return _mt("webm") if b"\x42\x82\x84webm" in head[:128] or b"webm" in head[:64] else _mt("mkv")


def _sniff_bmp(head: bytes) -> bool:
    # "BM" alone is two ASCII letters; require the DIB header size to be a real one.
    return len(head) >= 18 and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES


def _sniff_text(head: bytes) -> MediaType:
    text = head[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script", b"<iframe")):
        return _mt("html")
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return _mt("svg")
    if text.startswith(b"<?xml"):
        return _mt("xml")
    return UNKNOWN


_MPEG_KBPS = {
    (3, 3): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (3, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (3, 1): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 3): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _audio_frame_len(h: bytes) -> int:
    """Length of the MPEG audio / ADTS frame starting at h, or 0 when h is not a valid frame header."""
    if len(h) < 6 or h[0] != 0xFF or h[1] & 0xE0 != 0xE0:
        return 0
    if h[1] & 0xF6 == 0xF0:  # ADTS (AAC): 12-bit sync, layer bits 00
        return ((h[3] & 3) << 11) | (h[4] << 3) | (h[5] >> 5)
    version, layer, bitrate_idx, rate_idx = (h[1] >> 3) & 3, (h[1] >> 1) & 3, h[2] >> 4, (h[2] >> 2) & 3
    if version == 1 or layer == 0 or bitrate_idx in (0, 15) or rate_idx == 3:
        return 0
    kbps = _MPEG_KBPS[(3 if version == 3 else 2, layer if version == 3 or layer == 3 else 2)][bitrate_idx]
    rate = _MPEG_RATES[version][rate_idx]
    pad = (h[2] >> 1) & 1
    if layer == 3:  # Layer I
        return (12 * kbps * 1000 // rate + pad) * 4
    per_frame = 144 if version == 3 or layer == 2 else 72
    return per_frame * kbps * 1000 // rate + pad


def _is_mpeg_audio(head: bytes) -> bool:
    # Two bytes of sync are common in random data: require the next frame header where the first one says,
    # unless the sample ends before it.
    length = _audio_frame_len(head)
    if length < 7:
        return False
    return length + 6 > len(head) or _audio_frame_len(head[length:length + 6]) > 0


def sniff(head: bytes) -> MediaType:
    """What `head` (the first HEAD_BYTES of a file) is; UNKNOWN when nothing matches."""
    if len(head) < 4:
        return UNKNOWN
    if head[:3] == b"\xff\xd8\xff":
        return _mt("jpeg")
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return _mt("png")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return _mt("gif")
    if head[:4] == b"RIFF" and len(head) >= 12:
        return _sniff_riff(head)
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return _mt("tiff")
    if head[:2] == b"BM" and _sniff_bmp(head):
        return _mt("bmp")
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _sniff_ftyp(head)
    if len(head) >= 8 and head[4:8] in _QT_ATOMS:
        return _mt("mov")
    if head[:4] == b"\x1aE\xdf\xa3":
        return _sniff_ebml(head)
    if head[:4] == b"OggS":
        # Ogg carries audio unless a Theora video header is present.
        return _mt("ogv") if b"\x80theora" in head else _mt("ogg")
    if head[:4] == b"fLaC":
        return _mt("flac")
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return _mt("aiff")
    if head[:3] == b"ID3" or _is_mpeg_audio(head):
        return _mt("aac") if head[:3] != b"ID3" and head[1] & 0xF6 == 0xF0 else _mt("mp3")
    if head[:5] == b"%PDF-":
        return _mt("pdf")
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return _mt("zip")
    if head[:2] == b"\x1f\x8b":
        return _mt("gzip")
    if head[:6] == b"7z\xbc\xaf'\x1c":
        return _mt("7z")
    if head[:6] == b"Rar!\x1a\x07":
        return _mt("rar")
    if head[:4] == b"\x7fELF":
        return _mt("elf")
    if head[:2] == b"MZ":
        return _mt("exe")
    if head[:4] == b"\x00\x00\x01\x00":
        return _mt("ico")
    if head[:4] == b"8BPS":
        return _mt("psd")
    if head[:2] == b"\xff\x0a" or head[:12] == b"\x00\x00\x00\x0cJXL \r\n\x87\n":
        return _mt("jxl")
    if head[:4] == b"FLV\x01":
        return _mt("flv")
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return _mt("mpeg")
    if head[0] == 0x47 and len(head) > 376 and head[188] == 0x47 and head[376] == 0x47:
        return _mt("mpegts")
    return _sniff_text(head)


def refusal_code(mt: MediaType) -> str | None:
    """The stable error code for refusing `mt`, or None when it is an accepted image/video."""
    if mt.accepted:
        return None
    return "audio_only" if mt.is_audio else "unsupported_format"
