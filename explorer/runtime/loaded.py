"""Models with real weights, loaded once and shared.

A loaded model is shared (by the app's sessions, by a batch of images): it is built in eval
mode with its parameters frozen and is never changed afterwards. ``ModelCache`` keeps a bounded
number of bytes of them, least recently used dropped first. A load that would not fit the
memory budget is refused before anything is built (``guard_load``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from explorer.core.i18n import N_, _
from explorer.core.images import Preprocess
from explorer.core.preprocess import DESCRIBE
from explorer.runtime.build import build
from explorer.variants import resolve
from explorer.weights import checkpoints, formats
from explorer.weights.checkpoints import default_preprocess, is_url, resolve_weights
from explorer.weights.download import Progress
from explorer.weights.formats import OWN_FORMAT
from explorer.weights.pretrained import WeightsSpec, imagenet_labels

# What a LoadedModel's notes are made from (in English: loaded models are cached for every
# session); a page says them in its language with explorer.core.i18n.again(note, *NOTES).
NOTES = (*formats.NOTES, *checkpoints.NOTES, DESCRIBE)

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


LOAD_ADVICE = N_("choose a smaller network or fewer photos, or ask the server's operator for a "
                 "larger budget")


def load_estimate(variant: str, images: int = MAX_BATCH, *, device: str = "cpu",
                  layout: str | None = None):
    """The memory a load and a classification of ``images`` photos (one batch at most) need."""
    from explorer.runtime.memory import estimate_inference
    return estimate_inference(variant, batch=max(1, min(images, MAX_BATCH)), device=device,
                              layout=layout)


def guard_load(variant: str, images: int = MAX_BATCH, *, device: str = "cpu",
               layout: str | None = None, max_memory=None, reserved: int = 0):
    """MemoryRefused unless loading ``variant`` and running it fits the budget."""
    from explorer.runtime.memory import check
    check(load_estimate(variant, images, device=device, layout=layout), max_memory=max_memory,
          reserved=reserved, advice=_(LOAD_ADVICE))


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
                from explorer.runtime.memory import track
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


# -- the models a process keeps: a worker's, loaded once and answering many requests ----------------

PROCESS_MODEL_BYTES = 1536 * 2**20  # ~1.5 GiB: IR-v2 + v4 + v3 + GoogLeNet (and copies) fit
_PROCESS_MODELS: ModelCache | None = None
_PROCESS_LOCK = threading.Lock()


def process_models() -> ModelCache:
    """This process's loaded models (in a worker process: what its jobs loaded, kept for the next
    ones; ``explorer.runtime.workers`` reports their keys and bytes to the server)."""
    global _PROCESS_MODELS
    with _PROCESS_LOCK:
        if _PROCESS_MODELS is None:
            _PROCESS_MODELS = ModelCache(PROCESS_MODEL_BYTES)
        return _PROCESS_MODELS


def model_key(variant: str, weights, device: str = "cpu") -> tuple:
    """The key of a loaded model: a tag is read from the server's weights folder, so that folder
    belongs to it (a file's path names it alone)."""
    import os

    from explorer.weights.checkpoints import WEIGHTS_DIR_ENV
    return (variant, str(weights), str(device), os.environ.get(WEIGHTS_DIR_ENV, ""))


def kept_model(variant: str, weights, device: str = "cpu", *,
               progress: Progress | None = None) -> LoadedModel:
    """``variant`` with ``weights`` from this process's models, loaded when it is not there yet;
    ``progress(done, total)`` follows a download. The caller has checked the memory budget
    (a worker's job: the server, with ``load_estimate``, before it gave the job out)."""
    key = model_key(variant, weights, device)
    return process_models().get(
        key, lambda: load_model(variant, weights, device=device, progress=progress))
