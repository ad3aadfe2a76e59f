"""Where a checkpoint comes from: weights by tag, URL or file -> a local file, its registry entry
and the preprocessing its network expects.

A tag is looked up in the registry (``explorer.weights.pretrained``) and read from the server's own
folder (``$INCEPTION_EXPLORER_WEIGHTS``) or fetched once into the standard caches
(``explorer.weights.download``); a URL is fetched; a file is used as it is. Nothing here builds a model.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from explorer.core.cache import cache_dir
from explorer.core.i18n import DEFAULT, N_, _, speaking
from explorer.core.images import Preprocess
from explorer.variants import VARIANTS
from explorer.weights.download import Progress, fetch_hub, fetch_url
from explorer.weights.formats import OWN_FORMAT
from explorer.weights.pretrained import WeightsSpec, default_spec, find_spec

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
WEIGHTS_DIR_ENV = "INCEPTION_EXPLORER_WEIGHTS"
# A loaded model's notes on its preprocessing, made in English (loaded models are cached for
# every session): a page says them in its language with explorer.core.i18n.again(note, *NOTES).
ASSUMED_LIKE = N_("a file in {format} format: preprocessed like {weights} ({how}); choose another "
                  "if it was trained differently")
ASSUMED = N_("{variant} has no published weights to copy the preprocessing from: assumed {how}")
NOTES = (ASSUMED_LIKE, ASSUMED)


def is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def resolve_weights(variant: str, weights, *, progress: Progress | None = None,
                    endpoint: str | None = None) -> tuple[Path, WeightsSpec | None]:
    """A local checkpoint path for ``weights`` (a WeightsSpec, a tag, a URL or a file), fetching
    it into the cache when needed, and the registry entry it came from (None for files/URLs)."""
    text = str(weights)
    if isinstance(weights, WeightsSpec):
        spec = weights
    elif not isinstance(weights, Path) and is_url(text):
        # before the suffix test: ".../v3.pth" is a URL, not a file named "http:/..."
        return fetch_url(text, progress=progress), None
    elif isinstance(weights, Path) or Path(text).suffix in CHECKPOINT_SUFFIXES or (
            "/" in text or Path(text).exists()):
        return Path(weights), None
    else:
        spec = find_spec(variant, str(weights))
    local = local_copy(spec)
    if local is not None:
        return local, spec
    if spec.url:
        return fetch_url(spec.url, sha256_prefix=spec.sha256_prefix, progress=progress), spec
    return fetch_hub(spec.hub_id, spec.filename, endpoint=endpoint, progress=progress), spec


def local_copy(spec: WeightsSpec) -> Path | None:
    """A copy of ``spec``'s file that a server keeps in ``$INCEPTION_EXPLORER_WEIGHTS`` (for
    machines without internet), named ``<variant>.<tag>`` + .safetensors / .pth / .pt."""
    folder = os.environ.get(WEIGHTS_DIR_ENV)
    if not folder:
        return None
    for suffix in (".safetensors", ".pth", ".pt"):
        path = Path(folder) / f"{spec.name}{suffix}"
        if path.is_file():
            return path
    return None


def default_preprocess(variant: str, fmt: str) -> tuple[Preprocess, str | None]:
    """The preprocessing of the variant's default weights of the same checkpoint format; a note
    when it had to be assumed."""
    spec = default_spec(variant, fmt) or default_spec(variant)
    if spec is not None and spec.checkpoint_format == fmt:
        return spec.preprocess, None
    if spec is not None:
        with speaking(DEFAULT):  # English, as kept (see NOTES)
            return spec.preprocess, ASSUMED_LIKE.format(format=fmt, weights=spec.name,
                                                        how=spec.preprocess.describe())
    info = VARIANTS[variant]
    size = info.native_input_size
    pre = Preprocess.from_crop_pct(size, 0.875, interpolation="bilinear")
    with speaking(DEFAULT):
        return pre, ASSUMED.format(variant=variant, how=pre.describe())


def preprocess_for(variant: str, weights) -> Preprocess:
    """The preprocessing a prediction with ``weights`` (a tag, or None for a file not chosen
    yet) will use, before any file is read: the tag's, else the variant's default weights'."""
    if weights is not None:
        try:
            return find_spec(variant, str(weights)).preprocess
        except ValueError:
            pass
    spec = default_spec(variant)
    return default_preprocess(variant, spec.checkpoint_format if spec else OWN_FORMAT)[0]


def upload_dir() -> Path:
    """Uploaded checkpoints live in the explorer's one cache folder (``explorer.core.cache``)."""
    return cache_dir() / "uploads"


def store_upload(data: bytes, filename: str) -> Path:
    """An uploaded checkpoint saved as ``uploads/<content hash>/<the user's file name>``: the
    same upload is the same file (the model cache recognises it), and every message about the
    file names it as the user did."""
    name = Path(filename.replace("\\", "/")).name  # never a folder of the user's choosing
    suffix = Path(name).suffix.lower()
    if suffix not in CHECKPOINT_SUFFIXES:
        raise ValueError(_("{name} is not a checkpoint file: choose a {suffixes} file").format(
            name=name, suffixes=", ".join(CHECKPOINT_SUFFIXES)))
    if len(name.encode()) > 200:  # file systems stop at 255 bytes
        name = name.encode()[:180].decode(errors="ignore") + suffix
    folder = upload_dir() / hashlib.sha256(data).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".partial")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return path
