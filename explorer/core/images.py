"""User images in, model input tensors out.

``load_image`` turns a path, bytes or an uploaded file into a fully decoded RGB ``PIL.Image``,
or refuses it with an ``ImageError`` that names the file and says what to do: empty, missing,
not an image, SVG, truncated or corrupt, too many bytes, too many pixels (checked from the
header, before anything is decoded). ``to_tensor`` / ``to_batch`` then apply a ``Preprocess``
exactly as the weights' reference pipelines do (torchvision's ``ImageClassification``
transforms, timm's eval transforms, Cadene's ``TransformImage``): the shorter side resized with
PIL, a centre crop, pixels / 255, normalised. On ordinary photos the tensors are bit-identical to
theirs (tests/test_images.py checks it).

Pure library code: PIL and torch only.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Iterable
from pathlib import Path

import torch
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from explorer.core.i18n import N_, _
from explorer.core.preprocess import INTERPOLATION_NAMES, Preprocess  # noqa: F401 -- re-exported
from explorer.core.resources import resource

__all__ = [
    "MAX_BYTES", "MAX_PIXELS", "SAMPLES_DIR", "SUPPORTED", "ImageError", "Preprocess",
    "load_image", "preview", "sample_images", "to_batch", "to_rgb", "to_tensor",
]

MAX_BYTES = 20 * 1024 * 1024   # a larger upload is refused before it is read
MAX_PIXELS = 40_000_000        # a larger image is refused from its header, before decoding
SAMPLES_DIR = resource("assets") / "samples"
SAMPLE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")

# What we let PIL decode. PIL can open many more formats, some of which run external programs
# (EPS calls Ghostscript) or are rarely tested; a user's photo is one of these.
FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "GIF", "TIFF", "BMP", "DIB", "ICO", "PPM", "AVIF")
SUPPORTED = N_("JPEG, PNG, WebP, GIF, TIFF or BMP")  # for the UI, said with _(): "Photos (...)"
A_SUPPORTED_FILE = f"a {SUPPORTED} file"  # English; messages say _a_supported_file()


def _a_supported_file() -> str:
    return _("a {formats} file").format(formats=_(SUPPORTED))

# The network never sees more than a few hundred pixels across: when enlarging the shorter side
# would make an intermediate image larger than this many crops (a 6000x7 panorama would become
# 293142x342), only the part that the centre crop keeps is resized (see ``_box_resize_crop``).
# 16 crops is an aspect ratio over ~12:1 (at 342 -> 299); below it, tensors are bit-exact.
BOX_RESIZE_FACTOR = 16


class ImageError(ValueError):
    """An image that cannot be used; the message names the file and says what to do (in the
    run's language: English outside a page)."""

    def __init__(self, message: str, name: str | None = None):
        super().__init__(message)
        self.name = name

    def __reduce__(self):  # from a worker process, with its file's name
        return (type(self), (str(self), self.name))


# ---------------------------------------------------------------------------------------------
# Loading


def load_image(source, *, name: str | None = None, max_bytes: int = MAX_BYTES,
               max_pixels: int = MAX_PIXELS) -> Image.Image:
    """A fully loaded RGB image from a path (str or Path), bytes, or a binary file-like object
    (e.g. Streamlit's ``UploadedFile``).

    JPEG (and camera MPO), PNG, WebP, GIF, TIFF, BMP, ICO, PPM (and AVIF where PIL has it) are
    read; the EXIF orientation is applied; animations give their first frame; every pixel mode
    becomes 8-bit RGB (see ``to_rgb``). ICC profiles are ignored, as the reference pipelines
    ignore them. ``name`` is what error messages call the file (default: the path as given, or
    the file object's ``name``). Raises ``ImageError`` for anything unusable.
    """
    name = _display_name(source, name)
    data = _read_bytes(source, name, max_bytes)
    if _looks_like_svg(data) or (name.lower().endswith((".svg", ".svgz")) and not _is_raster(data)):
        raise ImageError(_("{name} is an SVG, a vector drawing rather than a photo: export it as "
                           "PNG or JPEG first and upload that.").format(name=name), name)
    with warnings.catch_warnings():
        # Image.open warns about images over PIL's MAX_IMAGE_PIXELS (and raises over twice
        # that). _decode refuses them itself, from the header, with a better message, so the
        # warning is silenced for this call (catch_warnings restores the filters after);
        # PIL's global limit is only read, never changed.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = _decode(data, name, max_pixels)
        except ImageError:
            raise
        except Image.DecompressionBombError as err:
            raise ImageError(_("{name} claims more pixels than can be decoded safely (PIL: "
                               "{error}): downscale it to a few megapixels and try again.").format(
                                   name=name, error=err), name) from None
        except MemoryError:
            raise ImageError(_("{name} is too large to decode in the memory available: downscale "
                               "it to a few megapixels and try again.").format(name=name),
                             name) from None
        except Exception as err:  # noqa: BLE001 -- damaged files make PIL raise almost anything
            raise ImageError(_("{name} is damaged or incomplete and cannot be decoded ({reason}): "
                               "re-save or re-download it and try again.").format(
                                   name=name, reason=_reason(err)), name) from None
    return image


def _display_name(source, name: str | None) -> str:
    if name:
        return str(name)
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    attr = getattr(source, "name", None)
    if isinstance(attr, str) and attr:
        return os.path.basename(attr) or attr
    return _("the image")


def _too_big(name: str, size: int, max_bytes: int) -> ImageError:
    have, limit = _mb(size), _mb(max_bytes)
    if have == limit:
        have, limit = _("{n} bytes").format(n=f"{size:,}"), f"{max_bytes:,}"
    return ImageError(_("{name} is {size}, more than the {limit} allowed: re-save it smaller (a "
                        "JPEG of a few megapixels is plenty) and try again.").format(
                            name=name, size=have, limit=limit), name)


def _mb(n: int) -> str:
    return (f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.0f} KB" if n >= 1024
            else _("{n} bytes").format(n=n))


def _empty(name: str) -> ImageError:
    return ImageError(_("{name} is empty (0 bytes): choose {a_file} that has a picture in it.")
                      .format(name=name, a_file=_a_supported_file()), name)


def _read_bytes(source, name: str, max_bytes: int) -> bytes:
    """The file's bytes, refusing an empty or over-size one -- before reading it all when its
    size is known (a path, an UploadedFile's ``size``, a seekable stream)."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            if not path.exists():
                raise ImageError(_("{name} was not found: check the path and try again.").format(
                    name=name), name)
            if not path.is_file():
                raise ImageError(_("{name} is not a file (a folder?): give the path of {a_file}.")
                                 .format(name=name, a_file=_a_supported_file()), name)
            size = path.stat().st_size
            if size > max_bytes:
                raise _too_big(name, size, max_bytes)
            with open(path, "rb") as f:
                data = f.read(max_bytes + 1)
        except OSError as err:
            raise ImageError(_("{name} could not be read ({reason}): check that the file is "
                               "readable and try again.").format(name=name, reason=_reason(err)),
                             name) from None
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif hasattr(source, "read"):
        size = getattr(source, "size", None)
        if isinstance(size, int) and size > max_bytes:
            raise _too_big(name, size, max_bytes)
        try:
            try:
                source.seek(0)  # an UploadedFile may have been read before
                start = 0
                end = source.seek(0, io.SEEK_END)
                source.seek(start)
                if isinstance(end, int) and end > max_bytes:
                    raise _too_big(name, end, max_bytes)
            except (AttributeError, OSError, ValueError):
                pass  # not seekable: read at most one byte over the limit
            data = source.read(max_bytes + 1)
        except ImageError:
            raise
        except Exception as err:  # noqa: BLE001 -- whatever the stream raises
            raise ImageError(_("{name} could not be read ({reason}): upload it again.").format(
                name=name, reason=_reason(err)), name) from None
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"{name}: the file object must be opened in binary mode")
        data = bytes(data)
    else:
        raise TypeError(f"load_image needs a path, bytes or a binary file object, not "
                        f"{type(source).__name__}")
    if len(data) > max_bytes:
        raise _too_big(name, len(data), max_bytes)
    if not data:
        raise _empty(name)
    return data


def _looks_like_svg(data: bytes) -> bool:
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<svg", b"<?xml", b"<!doctype svg", b"<!--")) and b"<svg" in head


def _is_raster(data: bytes) -> bool:
    return data.startswith((b"\xff\xd8", b"\x89PNG", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")) or (
        data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def _what_is_it(data: bytes) -> str:
    """A guess at what a file PIL cannot read is, for the error message: the whole sentence
    "{name} is ...", in the run's language."""
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypmsf1", b"ftypheif"):
        return _("{name} is a HEIC/HEIF photo, which is not supported: export it as JPEG.")
    if data[4:12] in (b"ftypavif", b"ftypavis"):
        return _("{name} is an AVIF image, which this installation cannot read: export it as JPEG "
                 "or PNG.")
    if data.startswith(b"%PDF"):
        return _("{name} is a PDF document: export the picture as JPEG or PNG.")
    if data[:2] == b"\x1f\x8b":
        return _("{name} is a compressed (gzip) file, not an image: choose {a_file}.")
    head = data[:512]
    if head and all(b in b"\t\n\r" or 32 <= b < 127 or b >= 128 for b in head):
        return _("{name} is text, not a picture: choose {a_file}.")
    return _("{name} is not an image this app can read: choose {a_file}.")


def _decode(data: bytes, name: str, max_pixels: int) -> Image.Image:
    # Truncated files must fail rather than come back half grey: PIL raises for them as long as
    # its global LOAD_TRUNCATED_IMAGES is False. Another module setting it would silently break
    # that, so say so instead of half-decoding.
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        warnings.warn("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True: truncated images will be "
                      "half-decoded instead of refused", RuntimeWarning, stacklevel=3)
    Image.init()
    formats = [f for f in FORMATS if f in Image.OPEN]
    try:
        opened = Image.open(io.BytesIO(data), formats=formats)
    except UnidentifiedImageError:
        raise ImageError(_what_is_it(data).format(name=name, a_file=_a_supported_file()),
                         name) from None
    with opened:
        width, height = opened.size
        # From the header only: nothing has been decoded yet (a few-KB PNG can claim 20000x20000).
        # PIL's own decompression-bomb limit, read and never changed, applies as well.
        limit = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
        if width * height > limit:
            raise ImageError(_(
                "{name} is {size} pixels ({megapixels} megapixels), more than the {limit} "
                "megapixels allowed: downscale it (the networks look at a few hundred pixels "
                "across anyway) and try again.").format(
                    name=name, size=f"{width}x{height}", megapixels=f"{width * height / 1e6:.1f}",
                    limit=f"{limit / 1e6:g}"), name)
        if width < 1 or height < 1:
            raise ImageError(_("{name} has no pixels ({size}): choose another image.").format(
                name=name, size=f"{width}x{height}"), name)
        opened.load()  # the first frame of an animation
        image = _exif_transpose(opened)
        try:
            rgb = to_rgb(image)
        except ValueError as err:  # a mode PIL cannot convert
            raise ImageError(_("{name} uses the pixel format {mode}, which cannot be turned into "
                               "RGB ({reason}): save it as an 8-bit RGB PNG or JPEG.").format(
                                   name=name, mode=repr(image.mode), reason=_reason(err)),
                             name) from None
    # a plain in-memory image, detached from the (closed) file and its plugin
    return rgb.copy() if rgb is opened else rgb


def _exif_transpose(image: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 -- unreadable EXIF: keep the pixels as stored
        return image


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text and text[0] else type(err).__name__


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB of any PIL mode (an RGB image without transparency is returned as is).

    Transparency (alpha channel, or a palette/tRNS transparent colour) is composited onto
    white: a fully transparent pixel's stored colour is arbitrary (often black, sometimes
    leftover garbage) and not what anyone sees, while the page the user looks at the image on
    is white -- so white is what the network gets. 16-bit greyscale (I;16, I;16B, ...) is scaled
    by 255/65535, not clipped. Mode I (32-bit) is taken as 8-bit if its values fit 0..255, as
    16-bit if they fit 0..65535, else stretched from its min..max; mode F as 0..1 if it fits,
    else 0..255 if it fits, else stretched.
    """
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _high_depth_to_l(image).convert("RGB")
    if mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    mode = image.mode
    grey = image if mode == "F" else (image if mode == "I" else image.convert("I")).convert("F")
    if mode.startswith("I;16"):
        scale, offset = 255 / 65535, 0.0
    else:
        if mode == "F":  # getextrema skips NaN
            values = torch.frombuffer(bytearray(grey.tobytes()), dtype=torch.float32)
            if not torch.isfinite(values).all():
                raise ValueError("it holds values that are not finite numbers")
        lo, hi = grey.getextrema()
        if mode == "F" and lo >= 0 and hi <= 1:
            scale, offset = 255.0, 0.0
        elif lo >= 0 and hi <= 255:
            scale, offset = 1.0, 0.0
        elif mode == "I" and lo >= 0 and hi <= 65535:
            scale, offset = 255 / 65535, 0.0
        else:
            scale = 255 / (hi - lo)
            offset = -lo * scale
    # PIL's F -> L conversion truncates (and clips to 0..255): + 0.5 makes it round
    return grey.point(lambda v: v * scale + (offset + 0.5)).convert("L")


# ---------------------------------------------------------------------------------------------
# Preprocessing

INTERPOLATIONS = {name: getattr(Image.Resampling, name.upper()) for name in INTERPOLATION_NAMES}
FILTER_SUPPORT = {"bilinear": 1.0, "bicubic": 2.0}  # PIL's kernels' half-widths, in pixels


def _resize_crop(image: Image.Image, pre: Preprocess) -> Image.Image:
    """torchvision's ``Resize(resize_size)`` (PIL backend) then ``CenterCrop(input_size)``."""
    w, h = image.size
    size, crop = pre.resize_size, pre.input_size
    resample = INTERPOLATIONS[pre.interpolation]
    # torchvision's output size: the shorter side to `size`, the longer truncated
    if w <= h:
        new_w, new_h = size, int(size * h / w)
    else:
        new_w, new_h = int(size * w / h), size
    # torchvision's CenterCrop offsets (Python's round: half to even)
    top = int(round((new_h - crop) / 2.0))
    left = int(round((new_w - crop) / 2.0))
    if size <= min(w, h) or new_w * new_h <= BOX_RESIZE_FACTOR * crop * crop:
        resized = image if (new_w, new_h) == (w, h) else image.resize((new_w, new_h), resample)
        return resized.crop((left, top, left + crop, top + crop))
    return _box_resize_crop(image, pre, new_w, new_h, left, top)


def _box_resize_crop(image: Image.Image, pre: Preprocess, new_w: int, new_h: int, left: int,
                     top: int) -> Image.Image:
    """The same crop for a small image of extreme aspect ratio, without the huge enlargement.

    Only used when the image is enlarged (a shrunk image is never larger than the decoded one).
    Enlarging, PIL's two-pass resize runs its horizontal pass first (Pillow 13 picks the order
    itself only when shrinking); here the two passes run one at a time in that order, so no
    heuristic can reorder them (tests/test_images.py compares with the full path).

    The short axis is resized whole, exactly as in the full path, and cropped after. The long
    axis is resized over the source interval that the crop keeps (``Image.resize(box=...)``):
    PIL maps output pixel i of a box resize to source position x0 + (i + 0.5) * (x1 - x0) / out
    and weighs the pixels within the filter support -- outside the box too -- so this is
    resize-then-crop up to rounding. PIL takes the box as 32-bit floats, which moves sample
    positions by ~1e-6 px and, now and then, a value by 1 (2 at worst, seen on bicubic noise).
    The source is first cut (at whole pixels, with a margin wider than the filter) to the strip
    around the box, so that the box coordinates, and their rounding, stay small.
    """
    w, h = image.size
    crop = pre.input_size
    resample = INTERPOLATIONS[pre.interpolation]
    margin = FILTER_SUPPORT[pre.interpolation] + 2  # enlarging: the kernel is not widened
    if w > h:  # long axis horizontal: box it in the horizontal pass, then the vertical pass
        scale = w / new_w
        b0, b1 = left * scale, min(w, (left + crop) * scale)
        c0, c1 = max(0, math.floor(b0 - margin)), min(w, math.ceil(b1 + margin))
        strip = image.crop((c0, 0, c1, h)).resize((crop, h), resample, box=(b0 - c0, 0, b1 - c0, h))
        return strip.resize((crop, new_h), resample).crop((0, top, crop, top + crop))
    scale = h / new_h  # long axis vertical: the horizontal pass whole, then box the vertical one
    b0, b1 = top * scale, min(h, (top + crop) * scale)
    c0, c1 = max(0, math.floor(b0 - margin)), min(h, math.ceil(b1 + margin))
    strip = image.crop((0, c0, w, c1)).resize((new_w, c1 - c0), resample)
    strip = strip.resize((new_w, crop), resample, box=(0, b0 - c0, new_w, b1 - c0))
    return strip.crop((left, 0, left + crop, crop))


def preview(image: Image.Image, pre: Preprocess) -> Image.Image:
    """The RGB crop the network sees (before normalisation), as a PIL image."""
    return _resize_crop(to_rgb(image), pre)


def to_tensor(image: Image.Image, pre: Preprocess) -> torch.Tensor:
    """A (3, S, S) float32 tensor, as the reference pipelines make it: resize, centre crop,
    pixels / 255 (times ``value_range``), channels reordered, ``(x - mean) / std``."""
    crop = preview(image, pre)
    side = pre.input_size
    pixels = torch.frombuffer(bytearray(crop.tobytes()), dtype=torch.uint8)
    x = pixels.view(side, side, 3).permute(2, 0, 1).contiguous()
    x = x.to(torch.float32).div(255)  # torchvision's to_tensor / convert_image_dtype
    if pre.value_range != 1:
        x = x.mul(pre.value_range)  # Cadene's ToRange255 multiplies after ToTensor divides
    if pre.channel_order == "BGR":
        x = x.flip(0).contiguous()
    mean = torch.as_tensor(pre.mean, dtype=torch.float32).view(-1, 1, 1)
    std = torch.as_tensor(pre.std, dtype=torch.float32).view(-1, 1, 1)
    return x.sub_(mean).div_(std)


def to_batch(images: Iterable[Image.Image], pre: Preprocess) -> torch.Tensor:
    """(N, 3, S, S) float32 from N PIL images."""
    tensors = [to_tensor(image, pre) for image in images]
    if not tensors:
        return torch.empty(0, 3, pre.input_size, pre.input_size)
    return torch.stack(tensors)


# ---------------------------------------------------------------------------------------------
# Samples


def sample_images() -> dict[str, Path]:
    """The bundled sample photos (see assets/samples/CREDITS.md), name -> path, by name."""
    if not SAMPLES_DIR.is_dir():
        return {}
    return {p.stem: p for p in sorted(SAMPLES_DIR.iterdir())
            if p.is_file() and p.suffix.lower() in SAMPLE_SUFFIXES}


def distinct(photos: Iterable[tuple[str, bytes]]) -> tuple[list[tuple[str, bytes]], list[tuple[str, str]]]:
    """Photos with the same bytes kept once: (the kept (name, bytes), [(dropped name, kept name)])."""
    import hashlib

    kept, first, dropped = [], {}, []
    for name, data in photos:
        digest = hashlib.sha256(data).digest()
        if digest in first:
            dropped.append((name, first[digest]))
        else:
            first[digest] = name
            kept.append((name, data))
    return kept, dropped
