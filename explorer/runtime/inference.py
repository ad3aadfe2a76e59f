"""Live predictions: a loaded model (``explorer.runtime.loaded``) and photos -> top-k classes.

Where the weights come from is ``explorer.weights.checkpoints``; loading, sharing and the memory guard
are ``explorer.runtime.loaded``; this module runs the network.
"""

from __future__ import annotations

import warnings

import torch

from explorer.core.i18n import _
from explorer.core.images import ImageError, Preprocess, load_image, to_batch
from explorer.runtime.loaded import MAX_BATCH, LoadedModel, guard_load, load_model
from explorer.variants import ConfigError
from explorer.weights.download import Progress


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
        return cpu, classify(cpu, images, k), _(
            "the GPU ran out of memory for {n} image(s) on {variant}: ran on the CPU").format(
                n=len(images), variant=loaded.variant)


def read_photos(photos) -> tuple[list[dict], list[int], list]:
    """(one entry per photo, ``{"image": name}`` or ``{"image", "error"}``; the indices of those
    that were read; their PIL images) for ``(name, source)`` pairs, a source being a path, bytes
    or a file object: a photo that cannot be read is said in its entry (``ImageError``'s
    message, naming the file as ``name``) and does not stop the others."""
    results, good, pictures = [], [], []
    for name, source in photos:
        try:
            pictures.append(load_image(source, name=name))
            good.append(len(results))
            results.append({"image": name})
        except ImageError as err:
            results.append({"image": name, "error": str(err)})
    return results, good, pictures


def predict(images, variant: str, weights, *, layout: str | None = None, top_k: int = 5,
            device: str = "cpu", progress: Progress | None = None,
            preprocess: Preprocess | None = None, max_memory=None,
            precision: str | None = None) -> list[dict]:
    """One entry per image: ``{"image", "top": [{"index", "label", "prob"}]}`` or
    ``{"image", "error"}``; an image that cannot be read does not stop the others. A model that
    cannot be loaded raises (ConfigError, WeightsError, DownloadError, UnknownWeights), and one
    that would not fit the memory budget (``max_memory``, else ``explorer.runtime.memory``'s default)
    raises MemoryRefused before anything is built. The network runs as
    ``explorer.for_inference`` makes it, in ``precision`` (float32 by default; bfloat16 where
    the device has it natively, float16 on GPUs): a ConfigError says when it cannot."""
    from explorer.runtime.fast import guard_copy, inference_copy, precision_name, unsupported
    if not 1 <= top_k <= 1000:
        raise ConfigError(_("top_k must be between 1 and 1000, got {got}").format(got=top_k))
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        warnings.warn("no CUDA GPU is available here: running on the CPU", stacklevel=2)
        device = "cpu"
    precision = precision_name(precision)
    if unsupported(precision, device):
        raise ConfigError(_("{precision} inference on {device}: {reason}").format(
            precision=precision, device=device.upper(), reason=unsupported(precision, device)))
    guard_load(variant, len(images), device=device, layout=layout, max_memory=max_memory)
    loaded = load_model(variant, weights, layout=layout, device=device, progress=progress,
                        preprocess=preprocess)
    guard_copy(loaded, precision, max_memory=max_memory, reserved=loaded.nbytes)
    loaded = inference_copy(loaded, precision)
    results, good, pictures = read_photos(
        (getattr(source, "name", None) or str(source), source) for source in images)

    def on_cpu():
        cpu = load_model(variant, weights, layout=layout, device="cpu", preprocess=preprocess)
        return inference_copy(cpu, "float32" if unsupported(precision, "cpu") else precision)

    _used, tops, note = classify_or_fall_back(loaded, pictures, top_k, on_cpu)
    if note:
        warnings.warn(note, stacklevel=2)
    for index, top in zip(good, tops):
        results[index]["top"] = top
    return results
