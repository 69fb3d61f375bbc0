"""The pixel width of a PNG, JPEG, GIF or WebP image, read from its header.

Enough for a preflight warning, with no imaging library: only the first bytes of the file
are read (a JPEG is scanned segment by segment up to its frame header).
"""

from __future__ import annotations

import struct
from pathlib import Path

_JPEG_FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_MAX_JPEG_SCAN = 1 << 20  # a frame header further in than this is not worth finding


def image_width(path: Path) -> int | None:
    """The image's width in pixels, or None when the file is not an image this can read."""
    try:
        with path.open("rb") as f:
            head = f.read(32)
            if head.startswith(b"\xff\xd8"):
                f.seek(2)
                return _jpeg_width(f.read(_MAX_JPEG_SCAN))
    except OSError:
        return None
    return _header_width(head)


def _header_width(head: bytes) -> int | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
        return int(struct.unpack(">I", head[16:20])[0])
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return int(struct.unpack("<H", head[6:8])[0])
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp_width(head)
    return None


def _webp_width(head: bytes) -> int | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 28:
        return int(struct.unpack("<H", head[26:28])[0]) & 0x3FFF
    if chunk == b"VP8L" and len(head) >= 25:
        bits = int(struct.unpack("<I", head[21:25])[0])
        return (bits & 0x3FFF) + 1
    if chunk == b"VP8X" and len(head) >= 27:
        return int.from_bytes(head[24:27], "little") + 1
    return None


def _jpeg_width(data: bytes) -> int | None:
    """Walk the JPEG markers after SOI to the first frame header (SOFn) and read its width."""
    i = 0
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            i += 2
            continue
        length = int(struct.unpack(">H", data[i + 2:i + 4])[0])
        if marker in _JPEG_FRAMES:
            if i + 9 > len(data):
                return None
            return int(struct.unpack(">H", data[i + 7:i + 9])[0])
        i += 2 + length
    return None
