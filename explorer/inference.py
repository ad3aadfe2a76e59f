"""Live predictions: weights by tag, URL or file -> a loaded model with its preprocessing -> top-k.

A loaded model is shared (by the app's sessions, by a batch of images): it is built in eval
mode with its parameters frozen and is never changed afterwards. ``ModelCache`` keeps a bounded
number of bytes of them, least recently used dropped first.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .download import Progress, fetch_hub, fetch_url
from .images import ImageError, Preprocess, load_image, to_batch
from .pretrained import WeightsSpec, default_spec, find_spec, imagenet_labels
from .variants import VARIANTS, ConfigError, build, resolve
from .weights import OWN_FORMAT

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
MAX_BATCH = 32  # images run through the network at once


@dataclass
class LoadedModel:
    model: nn.Module
    variant: str
    layout: str
    weights: str            # what was asked for: "inception_v4.tf_in1k", a URL or a file name
    checkpoint_format: str  # how the checkpoint's keys were named, as detected
    preprocess: Preprocess
    labels: list[str]
    spec: WeightsSpec | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.model.state_dict().values())


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


WEIGHTS_DIR_ENV = "INCEPTION_EXPLORER_WEIGHTS"


def local_copy(spec: WeightsSpec) -> Path | None:
    """A copy of ``spec``'s file that a server keeps in ``$INCEPTION_EXPLORER_WEIGHTS`` (for
    machines without internet), named ``<variant>.<tag>`` + .safetensors / .pth / .pt."""
    import os
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
        return spec.preprocess, (f"a file in {fmt} format: preprocessed like {spec.name} "
                                 f"({spec.preprocess.describe()}); choose another if it was "
                                 "trained differently")
    info = VARIANTS[variant]
    size = info.native_input_size
    pre = Preprocess.from_crop_pct(size, 0.875, interpolation="bilinear")
    return pre, (f"{variant} has no published weights to copy the preprocessing from: assumed "
                 f"{pre.describe()}")


def load_model(variant: str, weights, *, layout: str | None = None, device: str = "cpu",
               preprocess: Preprocess | None = None, progress: Progress | None = None,
               endpoint: str | None = None) -> LoadedModel:
    """Build ``variant`` with real weights, frozen, in eval mode."""
    info, lay, _ = resolve(variant, layout)
    path, spec = resolve_weights(info.name, weights, progress=progress, endpoint=endpoint)
    model = build(info.name, layout=lay.name, device=device, weights=path)
    model.requires_grad_(False)
    fmt = getattr(model, "checkpoint_format", OWN_FORMAT)
    notes = list(getattr(model, "weights_notes", []))
    if preprocess is None:
        if spec is not None:
            preprocess = spec.preprocess
        else:
            preprocess, note = default_preprocess(info.name, fmt)
            if note:
                notes.append(note)
    num_classes = model.config.num_classes
    labels = spec.labels() if spec else (imagenet_labels() if num_classes == 1000
                                         else [f"class {i}" for i in range(num_classes)])
    name = spec.name if spec else (str(weights) if is_url(str(weights)) else Path(path).name)
    return LoadedModel(model, info.name, lay.name, name, fmt, preprocess, labels, spec, notes)


def top_k(logits: torch.Tensor, labels: list[str], k: int) -> list[list[dict]]:
    probs = torch.softmax(logits.float(), dim=1)
    values, indices = probs.topk(min(k, probs.shape[1]), dim=1)
    return [[{"index": int(i), "label": labels[int(i)], "prob": float(p)}
             for p, i in zip(row_p, row_i)] for row_p, row_i in zip(values, indices)]


def classify(loaded: LoadedModel, images, k: int = 5) -> list[list[dict]]:
    """Top-k classes for PIL images (already loaded), in batches of at most MAX_BATCH."""
    out = []
    for start in range(0, len(images), MAX_BATCH):
        batch = to_batch(images[start:start + MAX_BATCH], loaded.preprocess).to(loaded.device)
        with torch.inference_mode():
            logits = loaded.model(batch)
        out += top_k(logits, loaded.labels, k)
    return out


def classify_or_fall_back(loaded: LoadedModel, images, k: int, load_on_cpu) -> tuple[
        LoadedModel, list[list[dict]], str | None]:
    """``classify``; when the GPU runs out of memory, free it and run on the CPU model that
    ``load_on_cpu()`` gives. Returns (the model used, the results, a note or None)."""
    try:
        return loaded, classify(loaded, images, k), None
    except torch.cuda.OutOfMemoryError:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        cpu = load_on_cpu()
        return cpu, classify(cpu, images, k), (f"the GPU ran out of memory for {len(images)} "
                                               f"image(s) on {loaded.variant}: ran on the CPU")


def predict(images, variant: str, weights, *, layout: str | None = None, top_k: int = 5,
            device: str = "cpu", progress: Progress | None = None,
            preprocess: Preprocess | None = None, max_memory=None,
            precision: str | None = None) -> list[dict]:
    """One entry per image: ``{"image", "top": [{"index", "label", "prob"}]}`` or
    ``{"image", "error"}``; an image that cannot be read does not stop the others. A model that
    cannot be loaded raises (ConfigError, WeightsError, DownloadError, UnknownWeights), and one
    that would not fit the memory budget (``max_memory``, else ``explorer.memory``'s default)
    raises MemoryRefused before anything is built. The network runs as
    ``explorer.for_inference`` makes it, in ``precision`` (float32 by default; bfloat16 where
    the device has it natively, float16 on GPUs): a ConfigError says when it cannot."""
    from .fast import guard_copy, inference_copy, precision_name, unsupported
    if not 1 <= top_k <= 1000:
        raise ConfigError(f"top_k must be between 1 and 1000, got {top_k}")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        warnings.warn("no CUDA GPU is available here: running on the CPU", stacklevel=2)
        device = "cpu"
    precision = precision_name(precision)
    if unsupported(precision, device):
        raise ConfigError(f"{precision} inference on {device.upper()}: "
                          f"{unsupported(precision, device)}")
    guard_load(variant, len(images), device=device, layout=layout, max_memory=max_memory)
    loaded = load_model(variant, weights, layout=layout, device=device, progress=progress,
                        preprocess=preprocess)
    guard_copy(loaded, precision, max_memory=max_memory, reserved=loaded.nbytes)
    loaded = inference_copy(loaded, precision)
    results, good, pictures = [], [], []
    for source in images:
        name = getattr(source, "name", None) or str(source)
        try:
            pictures.append(load_image(source, name=name))
            good.append(len(results))
            results.append({"image": name})
        except ImageError as err:
            results.append({"image": name, "error": str(err)})
    def on_cpu():
        cpu = load_model(variant, weights, layout=layout, device="cpu", preprocess=preprocess)
        return inference_copy(cpu, "float32" if unsupported(precision, "cpu") else precision)

    _, tops, note = classify_or_fall_back(loaded, pictures, top_k, on_cpu)
    if note:
        warnings.warn(note, stacklevel=2)
    for index, top in zip(good, tops):
        results[index]["top"] = top
    return results


def load_estimate(variant: str, images: int = MAX_BATCH, *, device: str = "cpu",
                  layout: str | None = None):
    """The memory a load and a classification of ``images`` photos (one batch at most) need."""
    from .memory import estimate_inference
    return estimate_inference(variant, batch=max(1, min(images, MAX_BATCH)), device=device,
                              layout=layout)


def guard_load(variant: str, images: int = MAX_BATCH, *, device: str = "cpu",
               layout: str | None = None, max_memory=None, reserved: int = 0):
    """MemoryRefused unless loading ``variant`` and running it fits the budget."""
    from .memory import check
    check(load_estimate(variant, images, device=device, layout=layout), max_memory=max_memory,
          reserved=reserved, advice="choose a smaller network or fewer photos, or ask the "
          "server's operator for a larger budget")


def upload_dir() -> Path:
    import os
    base = os.environ.get("INCEPTION_EXPLORER_CACHE") or Path.home() / ".cache" / "inception-explorer"
    return Path(base) / "uploads"


def store_upload(data: bytes, filename: str) -> Path:
    """An uploaded checkpoint saved as ``uploads/<content hash>/<the user's file name>``: the
    same upload is the same file (the model cache recognises it), and every message about the
    file names it as the user did."""
    import hashlib
    import os
    import tempfile

    name = Path(filename.replace("\\", "/")).name  # never a folder of the user's choosing
    suffix = Path(name).suffix.lower()
    if suffix not in CHECKPOINT_SUFFIXES:
        raise ValueError(f"{name} is not a checkpoint file: choose a "
                         f"{', '.join(CHECKPOINT_SUFFIXES)} file")
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


class ModelCache:
    """Loaded models shared by every session, bounded by their total weight bytes: the least
    recently used are dropped first. Loading the same key twice at once loads it once."""

    def __init__(self, max_bytes: int = 1 << 30):
        self.max_bytes = max_bytes
        self._models: OrderedDict[tuple, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple, threading.Lock] = {}

    def get(self, key: tuple, load) -> LoadedModel:
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._models:
                    self._models.move_to_end(key)
                    return self._models[key]
            loaded = load()
            if isinstance(getattr(loaded, "model", None), nn.Module):
                from .memory import track
                track(loaded.model)  # the memory budget counts what the cache holds
            with self._lock:
                self._models[key] = loaded
                self._evict()
                self._loading.pop(key, None)
        return loaded

    def _evict(self) -> None:
        # keep at least the newest model, even when it alone is above the cap
        while len(self._models) > 1 and self.total_bytes() > self.max_bytes:
            self._models.popitem(last=False)

    def total_bytes(self) -> int:
        return sum(m.nbytes for m in self._models.values())

    def keys(self) -> list[tuple]:
        with self._lock:
            return list(self._models)

    def __len__(self) -> int:
        return len(self._models)
