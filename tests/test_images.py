"""explorer.core.images: loading user images (every format and mode, every kind of bad file) and
preprocessing them exactly as torchvision's and timm's reference pipelines do."""

from __future__ import annotations

import io
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from image_corpus import BAD_NAMES, encode, gradient, png_header_only  # tests/ on sys.path
from image_corpus import bad_files as bad_file_corpus
from PIL import Image, ImageFile
from tolerances import ulps

from explorer.core import images
from explorer.core.images import (
    MAX_BYTES,
    MAX_PIXELS,
    SAMPLES_DIR,
    ImageError,
    Preprocess,
    load_image,
    preview,
    sample_images,
    to_batch,
    to_rgb,
    to_tensor,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(np.int32)


@pytest.fixture(scope="module", autouse=True)
def _small_tensors(one_thread):
    """Small tensors: one torch thread (see conftest's one_thread)."""


@pytest.fixture(scope="module")
def photos() -> dict[str, Image.Image]:
    """The sample photos, and one of them at awkward sizes."""
    samples = {name: load_image(path) for name, path in sample_images().items()}
    cat = samples["cat"]
    odd = {f"cat_{w}x{h}": cat.resize((w, h), Image.Resampling.LANCZOS)
           for w, h in [(500, 375), (375, 500), (301, 299), (299, 301), (640, 100), (100, 640),
                        (1, 1), (299, 299), (342, 342), (223, 224), (57, 31), (1000, 120)]}
    return samples | odd


# ---------------------------------------------------------------------------------------------
# Equivalence with the reference pipelines


def assert_same(ours: torch.Tensor, ref: torch.Tensor, what: str):
    # the same uint8 pixels through the same few float32 operations (/255, -mean, /std): only
    # rounding may differ, a few ulps at the values' magnitude (up to ~150 for Caffe's 0..255)
    assert ours.dtype == torch.float32 and ours.shape == ref.shape, what
    diff = (ours - ref).abs().max().item()
    assert diff <= ulps(ref.abs().max(), 4), f"{what}: max abs diff {diff}"


@pytest.mark.parametrize("weights, pre", [
    ("Inception_V3_Weights", Preprocess(299, 342)),
    ("GoogLeNet_Weights", Preprocess(224, 256)),
])
def test_matches_torchvision_weights_transforms(photos, weights, pre):
    import torchvision.models as tvm
    transform = getattr(tvm, weights).IMAGENET1K_V1.transforms()
    assert list(transform.crop_size) == [pre.input_size]
    assert list(transform.resize_size) == [pre.resize_size]
    assert transform.interpolation.value == pre.interpolation
    assert tuple(transform.mean) == pre.mean and tuple(transform.std) == pre.std
    for name, image in photos.items():
        assert_same(to_tensor(image, pre), transform(image), f"{weights} on {name}")


# What timm resolves for each tag (timm 1.0): input size, floor(size / crop_pct), interpolation,
# mean, std. Checked against timm below, then used to build our Preprocess.
TIMM = {
    "inception_v3.tf_in1k": (299, 341, "bicubic", HALF, HALF),
    "inception_v3.tv_in1k": (299, 341, "bicubic", HALF, HALF),
    "inception_v3.gluon_in1k": (299, 341, "bicubic", IMAGENET_MEAN, IMAGENET_STD),
    "inception_v4.tf_in1k": (299, 341, "bicubic", HALF, HALF),
    "inception_resnet_v2.tf_in1k": (299, 333, "bicubic", HALF, HALF),
}


@pytest.mark.parametrize("tag", sorted(TIMM))
def test_matches_timm_eval_transforms(photos, tag):
    import timm
    import timm.data
    with torch.device("meta"):  # only its pretrained_cfg is read: skip initialising weights
        model = timm.create_model(tag, pretrained=False)
    config = timm.data.resolve_data_config({}, model=model)
    transform = timm.data.create_transform(**config)
    size, resize, interpolation, mean, std = TIMM[tag]
    assert config["input_size"] == (3, size, size) and config["crop_mode"] == "center"
    assert config["interpolation"] == interpolation
    assert tuple(config["mean"]) == mean and tuple(config["std"]) == std
    pre = Preprocess.from_crop_pct(size, config["crop_pct"], interpolation=interpolation,
                                   mean=mean, std=std)
    assert pre.resize_size == resize
    for name, image in photos.items():
        assert_same(to_tensor(image, pre), transform(image), f"{tag} on {name}")
    # the comparison can fail: one pixel more in the resize is visible
    off_by_one = Preprocess(size, resize + 1, interpolation, mean, std)
    assert (to_tensor(photos["cat"], off_by_one) - transform(photos["cat"])).abs().max() > 0.01


def test_matches_cadene_bgr_0_255_pipeline(photos):
    """Cadene's TransformImage for BN-Inception: Resize, CenterCrop, ToTensor, RGB->BGR,
    x255, Normalize(mean=(104, 117, 128), std=1)."""
    from torchvision import transforms as T
    reference = T.Compose([
        T.Resize(256), T.CenterCrop(224), T.ToTensor(),
        T.Lambda(lambda x: x[[2, 1, 0]]), T.Lambda(lambda x: x.mul(255)),
        T.Normalize((104.0, 117.0, 128.0), (1.0, 1.0, 1.0)),
    ])
    pre = Preprocess(224, 256, "bilinear", (104, 117, 128), (1, 1, 1), channel_order="BGR",
                     value_range=255.0)
    for name, image in photos.items():
        assert_same(to_tensor(image, pre), reference(image), f"cadene on {name}")
    rgb = Preprocess(224, 256, "bilinear", (104, 117, 128), (1, 1, 1), value_range=255.0)
    assert not torch.equal(to_tensor(photos["cat"], rgb), reference(photos["cat"]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          database=None)
@given(w=st.integers(1, 400), h=st.integers(1, 400), seed=st.integers(0, 2**16),
       bicubic=st.booleans())
def test_matches_torchvision_on_any_size(w, h, seed, bicubic):
    from torchvision import transforms as T
    if max(w, h) > 8 * min(w, h):
        h = max(h, w // 8 + 1)
        w = max(w, h // 8 + 1)
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
    mode = "bicubic" if bicubic else "bilinear"
    pre = Preprocess(299, 342, mode)
    reference = T.Compose([T.Resize(342, T.InterpolationMode(mode)), T.CenterCrop(299),
                           T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    assert_same(to_tensor(image, pre), reference(image), f"{w}x{h} {mode}")


def test_to_batch_stacks_to_tensor(photos):
    pre = Preprocess(224, 256)
    names = ["cat", "coffee", "cat_57x31"]
    batch = to_batch([photos[n] for n in names], pre)
    assert batch.shape == (3, 3, 224, 224) and batch.dtype == torch.float32
    for i, name in enumerate(names):
        assert torch.equal(batch[i], to_tensor(photos[name], pre))
    assert to_batch([], pre).shape == (0, 3, 224, 224)


def test_to_tensor_converts_other_modes_like_load_image():
    rgba = Image.new("RGBA", (40, 30), (10, 20, 30, 0))
    pre = Preprocess(16, 16, mean=(0, 0, 0), std=(1, 1, 1))
    # transparent -> white, as load_image does
    assert torch.allclose(to_tensor(rgba, pre), torch.ones(3, 16, 16))
    grey = Image.new("L", (40, 30), 51)
    assert torch.allclose(to_tensor(grey, pre), torch.full((3, 16, 16), 0.2))


# ---------------------------------------------------------------------------------------------
# Extreme aspect ratios: only the cropped region is resized


def full_path(monkeypatch):
    monkeypatch.setattr(images, "BOX_RESIZE_FACTOR", 10**12)


def record_resizes(monkeypatch) -> list[tuple[int, int]]:
    sizes = []
    original = Image.Image.resize

    def spy(self, size, *args, **kw):
        sizes.append(tuple(size))
        return original(self, size, *args, **kw)

    monkeypatch.setattr(Image.Image, "resize", spy)
    return sizes


@pytest.mark.parametrize("size", [(2000, 60), (60, 2000)])
@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_box_path_is_within_one_unit_of_resize_then_crop(photos, monkeypatch, size, interpolation):
    image = photos["cat"].resize(size, Image.Resampling.LANCZOS)
    pre = Preprocess.from_crop_pct(299, 0.875, interpolation=interpolation)
    with monkeypatch.context() as m:
        sizes = record_resizes(m)
        boxed = pixels(preview(image, pre))
    assert max(w * h for w, h in sizes) <= 2 * 299 * 342  # the 11400x342 image was not made
    with monkeypatch.context() as m:
        full_path(m)
        sizes = record_resizes(m)
        full = pixels(preview(image, pre))
    long = int(pre.resize_size * 2000 / 60)
    assert max(sizes) in [(long, pre.resize_size), (pre.resize_size, long)]
    assert boxed.shape == full.shape == (299, 299, 3)
    assert np.abs(boxed - full).max() <= 1
    assert np.mean(boxed != full) < 0.05
    # and so the tensors are within one grey level after normalisation
    assert (to_tensor(image, pre) - torch.from_numpy(_normalise(full, pre))).abs().max() <= (
        1 / 255 / min(pre.std) + 1e-6)


def _normalise(rgb: np.ndarray, pre: Preprocess) -> np.ndarray:
    x = torch.from_numpy(rgb.astype(np.uint8)).permute(2, 0, 1).float().div(255)
    mean = torch.tensor(pre.mean).view(3, 1, 1)
    std = torch.tensor(pre.std).view(3, 1, 1)
    return ((x - mean) / std).numpy()


@pytest.mark.parametrize("size", [(6000, 7), (7, 6000), (40000, 2)])
def test_panorama_is_cheap(monkeypatch, size):
    image = gradient(*size)
    pre = Preprocess(299, 342)
    sizes = record_resizes(monkeypatch)
    x = to_tensor(image, pre)  # how long it takes: benchmarks/limits.py
    assert x.shape == (3, 299, 299) and torch.isfinite(x).all()
    # resize-then-crop would have made a 293142x342 (100 MP, 300 MB) image
    assert max(w * h for w, h in sizes) <= 2 * 299 * 342, sizes
    # the crop shows the middle of the gradient: red (x / width) is ~128 there
    crop = pixels(preview(image, pre))
    assert abs(crop[:, :, 0].mean() - 127.5) < 3


def test_normal_photos_never_take_the_box_path(photos, monkeypatch):
    def fail(*args, **kw):
        raise AssertionError("box path used")
    monkeypatch.setattr(images, "_box_resize_crop", fail)
    for name in ["cat", "rocket", "cat_640x100", "cat_100x640", "cat_1x1", "cat_1000x120"]:
        to_tensor(photos[name], Preprocess(299, 342))
    # a large panorama is only ever shrunk: never boxed either (shrinking makes nothing big)
    to_tensor(gradient(6000, 400), Preprocess(299, 342))


# ---------------------------------------------------------------------------------------------
# Preprocess


def test_from_crop_pct_floors_like_timm():
    assert Preprocess.from_crop_pct(299, 0.875).resize_size == 341
    assert Preprocess.from_crop_pct(299, 0.8975).resize_size == 333
    assert Preprocess.from_crop_pct(224, 0.875).resize_size == 256
    assert Preprocess.from_crop_pct(299, 1.0).resize_size == 299
    pre = Preprocess.from_crop_pct(299, 0.875, interpolation="bicubic", mean=HALF, std=HALF)
    assert (pre.interpolation, pre.mean, pre.std) == ("bicubic", HALF, HALF)
    with pytest.raises(ValueError):
        Preprocess.from_crop_pct(299, 0)
    with pytest.raises(ValueError):
        Preprocess.from_crop_pct(299, 1.2)


def test_describe_is_one_line_with_the_numbers():
    text = Preprocess(299, 342).describe()
    assert "\n" not in text
    for part in ["342", "299", "bilinear", "0.485", "0.229"]:
        assert part in text
    cadene = Preprocess(224, 256, "bilinear", (104, 117, 128), (1, 1, 1), "BGR", 255.0)
    assert "BGR" in cadene.describe() and "104" in cadene.describe() and "255" in cadene.describe()


@pytest.mark.parametrize("kw", [
    {"input_size": 299, "resize_size": 298},
    {"input_size": 0, "resize_size": 10},
    {"input_size": 299, "resize_size": 342, "interpolation": "lanczos"},
    {"input_size": 299, "resize_size": 342, "channel_order": "GBR"},
    {"input_size": 299, "resize_size": 342, "std": (0.2, 0.0, 0.2)},
    {"input_size": 299, "resize_size": 342, "mean": (0.5, 0.5)},
    {"input_size": 299, "resize_size": 342, "value_range": 0},
])
def test_preprocess_refuses_nonsense(kw):
    with pytest.raises(ValueError):
        Preprocess(**kw)


def test_preprocess_is_hashable_with_lists():
    a = Preprocess(224, 256, mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])
    b = Preprocess(224, 256, "bilinear", HALF, HALF)
    assert a == b and hash(a) == hash(b) and a.mean == HALF


# ---------------------------------------------------------------------------------------------
# Loading: formats, modes, orientation, sources


@pytest.mark.parametrize("fmt, kw, lossless", [
    ("PNG", {}, True), ("BMP", {}, True), ("TIFF", {}, True), ("WEBP", {"lossless": True}, True),
    ("JPEG", {"quality": 95}, False), ("WEBP", {"quality": 95}, False), ("GIF", {}, False),
    ("PPM", {}, True),
])
def test_formats_load_as_rgb(fmt, kw, lossless):
    image = gradient()
    out = load_image(encode(image, fmt, **kw), name=f"x.{fmt.lower()}")
    assert out.mode == "RGB" and out.size == image.size
    diff = np.abs(pixels(out) - pixels(image))
    if lossless:
        assert diff.max() == 0
    else:
        assert diff.mean() < 12, fmt  # GIF quantises to 256 colours


def test_grey_modes():
    grey = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16), "L")
    out = load_image(encode(grey, "PNG"))
    assert (pixels(out) == pixels(grey)[:, :, None]).all()  # R = G = B = grey
    one = Image.fromarray(np.eye(8, dtype=bool))
    assert one.mode == "1"
    out = load_image(encode(one, "PNG"))
    assert (pixels(out)[:, :, 1] == np.eye(8) * 255).all()


def test_palette_without_and_with_transparency():
    p = gradient(32, 8).quantize(16)
    out = load_image(encode(p, "PNG"))
    assert (pixels(out) == pixels(p.convert("RGB"))).all()
    p.info["transparency"] = 0
    out = load_image(encode(p, "PNG", transparency=0))
    index = np.asarray(p)
    assert (pixels(out)[index == 0] == 255).all()
    assert (pixels(out)[index != 0] == pixels(p.convert("RGB"))[index != 0]).all()
    assert (index == 0).any() and (index != 0).any()


def test_rgba_and_la_composite_onto_white():
    rgba = np.zeros((10, 20, 4), np.uint8)
    rgba[..., :3] = (200, 10, 30)
    rgba[:, :5, 3] = 0        # transparent, colour stored as (200, 10, 30): must become white
    rgba[:, 5:10, 3] = 255    # opaque: unchanged
    rgba[:, 10:, 3] = 128     # half: between the colour and white
    out = pixels(load_image(encode(Image.fromarray(rgba, "RGBA"), "PNG")))
    assert (out[:, :5] == 255).all()
    assert (out[:, 5:10] == (200, 10, 30)).all()
    expected = np.round(np.array([200, 10, 30]) * 128 / 255 + 255 * 127 / 255)
    assert np.abs(out[:, 10:] - expected).max() <= 1
    la = Image.fromarray(np.dstack([np.full((4, 4), 60, np.uint8),
                                    np.array([[0, 255, 0, 255]] * 4, np.uint8)]), "LA")
    out = pixels(load_image(encode(la, "PNG")))
    assert (out[:, 0] == 255).all() and (out[:, 1] == 60).all()


def test_rgb_with_transparent_colour_key():
    image = gradient(16, 16)
    key = image.getpixel((3, 3))
    out = pixels(load_image(encode(image, "PNG", transparency=key)))
    assert (out[3, 3] == 255).all()
    assert (out[0, 5] == pixels(image)[0, 5]).all() and tuple(pixels(image)[0, 5]) != key


def test_cmyk():
    cmyk = Image.new("CMYK", (8, 4), (0, 0, 0, 0))
    cmyk.paste((255, 0, 0, 0), (0, 0, 4, 4))  # cyan
    out = pixels(load_image(encode(cmyk, "TIFF")))
    assert (out[:, :4] == (0, 255, 255)).all() and (out[:, 4:] == 255).all()
    out = load_image(encode(cmyk, "JPEG", quality=95))
    assert np.abs(pixels(out)[:, :4] - (0, 255, 255)).max() < 20


def test_16_bit_grey_is_scaled_not_clipped():
    values = np.array([[0, 1, 128, 129, 256, 32767, 32768, 65280, 65535]], np.uint16)
    expected = np.array([0, 0, 0, 1, 1, 127, 128, 254, 255])  # round(v * 255 / 65535)
    i16 = Image.fromarray(values)
    assert i16.mode == "I;16"
    for data in [encode(i16, "PNG"), encode(i16, "TIFF")]:
        out = pixels(load_image(data))
        assert (out[0, :, 0] == expected).all() and (out[..., 0] == out[..., 2]).all()
    big_endian = Image.frombytes("I;16B", (9, 1), values.astype(">u2").tobytes())
    assert (pixels(to_rgb(big_endian))[0, :, 1] == expected).all()
    assert (pixels(load_image(encode(big_endian, "TIFF")))[0, :, 1] == expected).all()
    ramp = Image.fromarray(np.linspace(0, 65535, 256).astype(np.uint16).reshape(16, 16))
    out = pixels(load_image(encode(ramp, "PNG")))[..., 0].ravel()
    assert out.min() == 0 and out.max() == 255 and (np.diff(out) >= 0).all()
    assert len(np.unique(out)) > 200  # a clipping conversion would give ~2 values


@pytest.mark.parametrize("values, expected", [
    ([0, 100, 255], [0, 100, 255]),                        # 8-bit range kept
    ([0, 257, 32768, 65535], [0, 1, 128, 255]),            # 16-bit range scaled
    ([-1000, 0, 1000], [0, 128, 255]),                     # anything else: min..max stretched
    ([0, 70000, 140000], [0, 128, 255]),
])
def test_32_bit_integer_grey(values, expected):
    image = Image.fromarray(np.array([values], np.int32))
    assert image.mode == "I"
    assert list(pixels(load_image(encode(image, "TIFF")))[0, :, 0]) == expected


@pytest.mark.parametrize("values, expected", [
    ([0.0, 0.5, 1.0], [0, 128, 255]),                      # 0..1
    ([0.0, 100.0, 255.0], [0, 100, 255]),                  # 0..255
    ([-1.0, 0.0, 1.0], [0, 128, 255]),                     # stretched
])
def test_float_grey(values, expected):
    image = Image.fromarray(np.array([values], np.float32))
    assert image.mode == "F"
    assert list(pixels(load_image(encode(image, "TIFF")))[0, :, 0]) == expected


def test_float_with_nan_is_refused():
    image = Image.fromarray(np.array([[0.0, np.nan]], np.float32))
    with pytest.raises(ImageError, match="nan.tif"):
        load_image(encode(image, "TIFF"), name="nan.tif")


def two_halves(w=40, h=20) -> Image.Image:
    """Left half red, right half blue."""
    image = Image.new("RGB", (w, h), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, w // 2, h))
    return image


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_exif_orientation_is_applied(fmt):
    stored = two_halves()
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": the stored left edge goes to the top
    out = load_image(encode(stored, fmt, exif=exif, quality=95), name=f"phone.{fmt.lower()}")
    assert out.size == (20, 40)
    top, bottom = pixels(out)[5, 10], pixels(out)[35, 10]
    assert top[0] > 200 and top[2] < 50, top        # red
    assert bottom[2] > 200 and bottom[0] < 50, bottom  # blue
    # without the tag, unchanged
    plain = load_image(encode(stored, fmt, quality=95))
    assert plain.size == (40, 20)


def test_broken_exif_keeps_the_pixels():
    exif = Image.Exif()
    exif[0x0112] = 99  # no such orientation
    out = load_image(encode(two_halves(), "JPEG", exif=exif))
    assert out.size == (40, 20)


@pytest.mark.parametrize("fmt, kw", [("GIF", {}), ("WEBP", {"lossless": True}), ("PNG", {})])
def test_animations_give_their_first_frame(fmt, kw):
    frames = [Image.new("RGB", (8, 6), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0,
                  **kw)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    out = pixels(load_image(data))
    assert (out == (255, 0, 0)).all()


class Uploaded(io.BytesIO):
    """Like Streamlit's UploadedFile: a BytesIO with a name and a size."""

    def __init__(self, data: bytes, name: str):
        super().__init__(data)
        self.name = name
        self.size = len(data)


class Stream:
    """A non-seekable binary stream that records how much was read."""

    def __init__(self, data: bytes, name: str | None = None):
        self._data, self.read_bytes = data, 0
        if name:
            self.name = name

    def read(self, n: int = -1) -> bytes:
        chunk = self._data[self.read_bytes:] if n < 0 else self._data[self.read_bytes:self.read_bytes + n]
        self.read_bytes += len(chunk)
        return chunk


def test_sources(tmp_path):
    data = encode(gradient(), "PNG")
    path = tmp_path / "g.png"
    path.write_bytes(data)
    expected = pixels(gradient())
    uploaded = Uploaded(data, "upload.png")
    uploaded.read()  # already read to the end once, as Streamlit reruns do
    for source in [path, str(path), data, bytearray(data), memoryview(data), io.BytesIO(data),
                   uploaded, Stream(data)]:
        out = load_image(source)
        assert out.mode == "RGB" and (pixels(out) == expected).all(), type(source)
    # loaded into memory: the file can go
    out = load_image(path)
    path.unlink()
    assert (pixels(out) == expected).all()
    with pytest.raises(TypeError):
        load_image(12345)


def test_names_in_messages(tmp_path):
    bad = b"not an image at all"
    with pytest.raises(ImageError, match="upload.jpg") as err:
        load_image(Uploaded(bad, "upload.jpg"))
    assert err.value.name == "upload.jpg"
    with pytest.raises(ImageError, match=r"holiday\.jpg"):
        load_image(bad, name="holiday.jpg")
    with pytest.raises(ImageError, match="the image"):
        load_image(bad)
    path = tmp_path / "folder" / "bad.jpg"
    path.parent.mkdir()
    path.write_bytes(bad)
    with pytest.raises(ImageError, match=re.escape(str(path))):
        load_image(path)


# ---------------------------------------------------------------------------------------------
# Bad files (tests/image_corpus.py)


@pytest.fixture(scope="module")
def bad_files() -> dict[str, tuple[bytes, str]]:
    """file name -> (content, a word the message must contain)."""
    return bad_file_corpus()


def test_bad_names_cover_the_corpus(bad_files):
    assert sorted(BAD_NAMES) == sorted(bad_files)


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize("how", ["path", "upload"])
def test_bad_files_raise_image_error_naming_the_file(bad_files, tmp_path, name, how):
    data, word = bad_files[name]
    if how == "path":
        source = tmp_path / name
        source.write_bytes(data)
    else:
        source = Uploaded(data, name)
    with pytest.raises(ImageError) as err:  # any other exception type fails the test
        load_image(source)  # how long a refusal takes: benchmarks/limits.py
    message = str(err.value)
    assert name in message
    assert word.lower() in message.lower(), message
    assert ": " in message and message.endswith(".")  # what happened: what to do.
    assert "\n" not in message


def test_svg_message_says_to_export(bad_files):
    with pytest.raises(ImageError, match="vector.*PNG or JPEG"):
        load_image(bad_files["drawing.svg"][0], name="drawing.svg")


def test_bomb_is_refused_from_the_header(bad_files, monkeypatch):
    data = bad_files["bomb.png"][0]
    assert len(data) < 200_000
    decoded = []
    monkeypatch.setattr(ImageFile.ImageFile, "load",
                        lambda self: decoded.append(self) or pytest.fail("decoded"))
    for limit in [MAX_PIXELS, 10**9]:  # ours, then PIL's (which is only read)
        with pytest.raises(ImageError, match="pixels"):
            load_image(data, name="bomb.png", max_pixels=limit)
    assert not decoded


def test_pixel_limit_is_exact():
    data = png_header_only(100, 50)
    with pytest.raises(ImageError, match="100x50"):
        load_image(data, name="x.png", max_pixels=4999)
    # at the limit the header passes; the (fake) pixel data then fails to decode
    with pytest.raises(ImageError, match="damaged"):
        load_image(data, name="x.png", max_pixels=5000)
    assert load_image(encode(gradient(100, 50), "PNG"), max_pixels=5000).size == (100, 50)


def test_size_limit_is_checked_before_reading(tmp_path, monkeypatch):
    data = encode(gradient(), "PNG")
    with pytest.raises(ImageError, match=r"big\.png.*more than"):
        load_image(data, name="big.png", max_bytes=len(data) - 1)
    assert load_image(data, max_bytes=len(data)).size == (64, 48)
    # an upload that announces its size is not read at all
    upload = Uploaded(data, "big.png")
    upload.read = lambda *a: pytest.fail("read")  # type: ignore[method-assign]
    with pytest.raises(ImageError, match="big.png"):
        load_image(upload, max_bytes=100)
    # a stream of unknown size is read only up to one byte past the limit
    stream = Stream(data * 100, name="stream.png")
    with pytest.raises(ImageError, match="stream.png"):
        load_image(stream, max_bytes=1000)
    assert stream.read_bytes == 1001
    # a file on disk is refused from its size (a sparse 21 MiB file is never read)
    sparse = tmp_path / "huge.jpg"
    with open(sparse, "wb") as f:
        f.truncate(MAX_BYTES + 1)
    monkeypatch.setattr(images, "open", lambda *a, **k: pytest.fail("opened"), raising=False)
    with pytest.raises(ImageError, match=r"huge\.jpg is 20,971,521 bytes, more than the 20,971,520"):
        load_image(sparse)


def test_missing_and_not_a_file(tmp_path):
    with pytest.raises(ImageError, match=r"nope\.jpg was not found.*check the path"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="not a file"):
        load_image(tmp_path)


def test_pil_globals_are_left_alone(bad_files):
    before = (ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS, list(warnings.filters))
    for name in ["truncated.jpg", "bomb.png", "claims_100000x100000.png", "text.jpg"]:
        with pytest.raises(ImageError):
            load_image(bad_files[name][0], name=name)
    load_image(encode(gradient(), "PNG"))
    assert (ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS,
            list(warnings.filters)) == before
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_someone_else_allowing_truncated_images_is_reported(bad_files, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.warns(RuntimeWarning, match="LOAD_TRUNCATED_IMAGES"):
        load_image(bad_files["truncated.png"][0], name="t.png")


def test_no_warnings_escape_for_bombs(bad_files):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ["bomb.png", "claims_100000x100000.png"]:
            with pytest.raises(ImageError):
                load_image(bad_files[name][0], name=name, max_pixels=10**9)
        # between PIL's warning and error limits (89 and 179 MP): refused, no warning
        with pytest.raises(ImageError, match="megapixels"):
            load_image(png_header_only(10_000, 10_000), name="w.png", max_pixels=10**9)


# ---------------------------------------------------------------------------------------------
# Samples


def test_samples_are_real_small_credited_photos():
    samples = sample_images()
    assert len(samples) >= 3
    assert {"cat", "coffee", "astronaut", "rocket"} <= set(samples)
    credits = (SAMPLES_DIR / "CREDITS.md").read_text()
    for path in samples.values():
        assert isinstance(path, Path) and path.parent == SAMPLES_DIR
        assert path.stat().st_size < 300_000, path
        assert path.name in credits, f"{path.name} has no credit"
        image = load_image(path)
        assert min(image.size) >= 256 and image.mode == "RGB"
        assert pixels(image).std() > 20  # a photo, not a flat placeholder
    assert "CC0" in credits and "public domain" in credits.lower()


def test_constants():
    assert MAX_BYTES == 20 * 2**20
    assert 10e6 <= MAX_PIXELS <= Image.MAX_IMAGE_PIXELS
    assert math.isclose(Preprocess(299, 342).crop_pct, 299 / 342)


def test_command_line_answers_every_file_of_the_corpus(bad_files, reference_zoo, tmp_path, capsys):
    """One batch: every bad file gets its own error naming it, the good photos around them are
    still classified, and the exit status says that not every image succeeded."""
    import json

    from explorer.cli import main as cli_main

    paths = []
    for name, (content, _) in bad_files.items():
        (tmp_path / name).write_bytes(content)
        paths.append(str(tmp_path / name))
    odd = {  # unusual but good: each must be answered
        "panorama_6000x7.png": encode(gradient(6000, 7), "PNG"),
        "cmyk.jpg": encode(gradient().convert("CMYK"), "JPEG"),
        "grey16.png": encode(Image.fromarray((np.arange(64 * 48, dtype=np.uint16) * 20)
                                             .reshape(48, 64)), "PNG"),
        "animated.gif": encode(gradient(), "GIF", save_all=True,
                               append_images=[gradient().rotate(90)]),
        "rotated.jpg": encode(gradient(), "JPEG", exif=_exif_orientation(6)),
    }
    for name, content in odd.items():
        (tmp_path / name).write_bytes(content)
    good = [str(p) for p in sample_images().values()][:2] + [str(tmp_path / n) for n in odd]
    argv = ["predict", good[0], *paths, *good[1:], "--variant", "googlenet", "--weights",
            str(reference_zoo["torchvision_googlenet"].path), "--json"]
    with pytest.warns(UserWarning):
        status = cli_main(argv)
    results = json.loads(capsys.readouterr().out)
    assert status == 1
    assert [r["image"] for r in results] == [good[0], *paths, *good[1:]]
    for result in [results[0], *results[1 + len(paths):]]:
        assert len(result["top"]) == 5, result
    for result, (name, (_, word)) in zip(results[1:1 + len(paths)], bad_files.items()):
        assert set(result) == {"image", "error"}, name
        assert name in result["error"] and word.lower() in result["error"].lower(), result


def _exif_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()
