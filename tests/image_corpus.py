"""Images for the tests and benchmarks/limits.py: a gradient, encoders, and a corpus of bad files
(truncated, corrupt, not images at all, decompression bombs). Not a test module."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def gradient(w: int = 64, h: int = 48) -> Image.Image:
    """A small RGB image with distinct values along both axes."""
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], axis=-1)
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height RGB pixels, with almost no data behind it."""
    return (b"\x89PNG\r\n\x1a\n"
            + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b""))


def png_bomb(side: int = 20000) -> bytes:
    """A valid 1-bit side x side all-black PNG: a few tens of KB that decode to side**2 pixels."""
    row = b"\0" * (1 + (side + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row * 1000) for _ in range(side // 1000)) + compressor.flush()
    return (b"\x89PNG\r\n\x1a\n"
            + png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
            + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b""))


def corrupt(data: bytes, start: int, n: int = 64) -> bytes:
    """``n`` bytes zeroed from ``start`` on."""
    out = bytearray(data)
    out[start:start + n] = bytes(n)
    return bytes(out)


def bad_files() -> dict[str, tuple[bytes, str]]:
    """file name -> (content, a word the message must contain)."""
    photo = gradient(320, 240)
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (240, 320, 3), np.uint8))
    jpeg, png = encode(photo, "JPEG", quality=90), encode(noise, "PNG")
    progressive = encode(photo, "JPEG", quality=90, progressive=True)
    return {
        "empty.jpg": (b"", "empty"),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "damaged or incomplete"),
        "truncated_late.jpg": (jpeg[:-100], "damaged or incomplete"),
        "truncated_progressive.jpg": (progressive[: len(progressive) * 2 // 3], "incomplete"),
        "truncated.png": (png[: len(png) // 2], "damaged or incomplete"),
        "truncated_late.png": (png[:-40], "damaged or incomplete"),
        "header_only.png": (png[:60], "damaged or incomplete"),
        "truncated.gif": (encode(photo.quantize(64), "GIF")[:2000], "incomplete"),
        "truncated.webp": (encode(photo, "WEBP")[:500], "incomplete"),
        "truncated.tif": (encode(photo, "TIFF")[:3000], "incomplete"),
        "corrupt_middle.png": (corrupt(png, len(png) // 2), "damaged"),
        "corrupt_start.jpg": (corrupt(jpeg, 0, 600), "not an image"),
        "corrupt_tables.jpg": (corrupt(jpeg, jpeg.index(b"\xff\xdb"), 69), "damaged"),
        "text.jpg": (b"Dear teacher, this is my homework.\n" * 20, "text"),
        "random.png": (np.random.default_rng(1).integers(0, 256, 4000, np.uint8).tobytes(),
                       "not an image"),
        "drawing.svg": (b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/'
                        b'2000/svg" width="100" height="100"><circle r="40"/></svg>', "SVG"),
        "svg_named.png": (b'\xef\xbb\xbf\n<svg xmlns="http://www.w3.org/2000/svg"></svg>', "PNG or JPEG"),
        "gz.svgz": (b"\x1f\x8b\x08\x00" + bytes(40), "SVG"),
        "phone.heic": (b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(100), "HEIC"),
        "scan.jpg": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + bytes(100), "PDF"),
        "bomb.png": (png_bomb(), "pixels"),
        "claims_100000x100000.png": (png_header_only(100_000, 100_000), "pixels"),
        "claims_50_megapixels.png": (png_header_only(10_000, 5_000), "megapixels"),
        "claims_0x10.bmp": (b"BM" + struct.pack("<IHHI", 70, 0, 0, 54)
                            + struct.pack("<IiiHHIIiiII", 40, 0, 10, 1, 24, 0, 16, 0, 0, 0, 0)
                            + bytes(16), "BMP"),
    }


BAD_NAMES = ["empty.jpg", "truncated.jpg", "truncated_late.jpg", "truncated_progressive.jpg",
             "truncated.png", "truncated_late.png", "header_only.png", "truncated.gif",
             "truncated.webp", "truncated.tif", "corrupt_middle.png", "corrupt_start.jpg",
             "corrupt_tables.jpg", "text.jpg", "random.png", "drawing.svg", "svg_named.png",
             "gz.svgz", "phone.heic", "scan.jpg", "bomb.png", "claims_100000x100000.png",
             "claims_50_megapixels.png", "claims_0x10.bmp"]
