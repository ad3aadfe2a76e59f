"""The heavy jobs as worker entry points (``explorer.runtime.workers``): plain arguments in, plain
results out, progress sent back through ``progress(payload)``. They run in a worker process or a
Ray task, never in the web server's threads."""

from __future__ import annotations

from collections.abc import Callable

Send = Callable[[object], None]


def time_forward(variant: str, *, device: str = "cpu", repeats: int = 5, config: dict | None = None,
                 progress: Send) -> dict:
    """Inspect's forward timing: ``explorer.runtime.timing.time_variant``; progress (done, total)."""
    from explorer.runtime.timing import time_variant
    return time_variant(variant, device=device, repeats=repeats, **(config or {}),
                        on_step=lambda i, n: progress((i, n)))


def block_latency(variant: str, *, config: dict | None = None, progress: Send) -> dict:
    """The graph's latency overlay: per-module forward time on the CPU, a model of its own."""
    from explorer.runtime.build import build
    from explorer.runtime.timing import module_latency
    from explorer.variants import VARIANTS

    config = dict(config or {})
    size = config.pop("input_size", None) or VARIANTS[variant].native_input_size
    progress((0, 1))
    return module_latency(build(variant, device="cpu", **config).eval(), size)



def export_onnx(variant: str, *, config: dict | None = None, progress: Send):
    """Inspect's ONNX download: ``explorer.runtime.onnx.export_variant`` (the checked file)."""
    from explorer.runtime.onnx import export_variant

    progress((0, 1))
    return export_variant(variant, **(config or {}))


def measure_latency(rows: list[dict], *, device: str = "cpu", refresh: bool = False,
                    runtimes=("eager",), progress: Send, batches=None,
                    dtype: str = "float32") -> list[tuple]:
    """Compare's latency table, measured in the worker; returns the measured cache entries
    (``explorer.runtime.latency.entries``), which the web process then ``remember``s."""
    from explorer.runtime import latency

    batches = tuple(batches or latency.BATCHES)
    latency.measure(rows, device=device, refresh=refresh, runtimes=tuple(runtimes),
                    batches=batches, dtype=dtype,
                    progress=lambda frac, text: progress((frac, text)))
    return latency.entries(rows, device=device, batches=batches, dtype=dtype)


# -- Predict: the models stay loaded in the worker (explorer.runtime.loaded.process_models) ------

def _kept_copy(plain, weights, precision: str):
    """The optimised copy of ``plain`` in ``precision``, kept beside it (after ``guard_copy``)."""
    import os

    from explorer.runtime.fast import guard_copy, inference_copy
    from explorer.runtime.loaded import model_key, process_models
    from explorer.runtime.ort_engine import ENGINE_ENV

    key = (*model_key(plain.variant, weights, plain.device.type), precision,
           os.environ.get(ENGINE_ENV, ""))

    def make():
        guard_copy(plain, precision)
        return inference_copy(plain, precision)
    return process_models().get(key, make)


def predict_photos(variant: str, weights: str, *, photos: list[tuple[str, bytes]],
                   device: str = "cpu", precision: str = "float32", k: int = 5,
                   progress: Send) -> dict:
    """The Predict page's answer for one network: ``photos`` as (name, the file's bytes), top-k
    of each from the optimised copy in ``precision`` (on the CPU in the same or float32 precision
    when the GPU runs out of memory). Plain data back: ``results`` (``{"image", "top"}`` or
    ``{"image", "error"}`` per photo, in order), the model's checkpoint format, device, precision,
    notes and preprocessing, ``ms`` of the classification, ``load_s`` (None when the model was
    already loaded here). Progress: ``("download", done, total)`` while weights download, then
    ``("running", photos)`` once the model is ready."""
    import os
    import time

    from explorer.core.cost import measure
    from explorer.runtime.fast import precision_name, unsupported
    from explorer.runtime.inference import classify_or_fall_back, read_photos
    from explorer.runtime.loaded import kept_model, model_key, process_models

    results, good, pictures = read_photos(photos)
    started = time.perf_counter()
    cached = model_key(variant, weights, device) in process_models().keys()
    plain = kept_model(variant, weights, device,
                       progress=lambda done, total: progress(("download", done, total)))
    fast = _kept_copy(plain, weights, precision)
    load_s = None if cached else time.perf_counter() - started
    progress(("running", len(pictures)))
    on_cpu = "float32" if unsupported(precision, "cpu") else precision
    start = time.perf_counter()
    with measure("forward"):  # preprocessing, the forward pass and top-k (explorer.core.cost)
        used, tops, note = classify_or_fall_back(
            fast, pictures, k, lambda: _kept_copy(kept_model(variant, weights, "cpu"), weights,
                                                  on_cpu))
    ms = (time.perf_counter() - start) * 1000
    for index, top in zip(good, tops):
        results[index]["top"] = top
    return {"results": results, "checkpoint_format": used.checkpoint_format,
            "device": used.device.type, "precision": precision_name(getattr(used.model, "dtype", None)),
            "model": type(used.model).__name__, "notes": list(used.notes), "note": note,
            "preprocess": used.preprocess, "ms": ms, "load_s": load_s, "pid": os.getpid()}


def what_it_sees(variant: str, weights: str, *, photo: tuple[str, bytes], device: str = "cpu",
                 channels: int = 16, progress: Send) -> dict:
    """Grad-CAM for the top class and every block's feature maps (``channels`` each) of one photo,
    on the plain model kept in this worker (hooks and gradients never touch the copy that
    answers). Plain data back: ``cam`` (class index and label, block, ``heatmap`` and ``coarse``
    as float32 numpy arrays in 0..1), ``maps`` (per block: name, shape, top channels, ``maps``
    as a (k, H, W) float32 array) and the preprocessing of the crop they are over."""
    import os

    from explorer.core.cost import measure
    from explorer.core.images import load_image, to_batch
    from explorer.runtime.loaded import kept_model
    from explorer.runtime.saliency import feature_maps, grad_cam

    name, raw = photo
    image = load_image(raw, name=name)
    plain = kept_model(variant, weights, device,
                       progress=lambda done, total: progress(("download", done, total)))
    x = to_batch([image], plain.preprocess).to(plain.device)
    with measure("grad_cam"):
        cam = grad_cam(plain.model, x)
    with measure("feature_maps"):
        maps = feature_maps(plain.model, x, channels=channels)
    return {"cam": {"class_index": cam.class_index, "label": plain.labels[cam.class_index],
                    "block": cam.block, "heatmap": cam.heatmap.numpy(),
                    "coarse": cam.coarse.numpy()},
            "maps": [{"name": m.name, "shape": m.shape, "top_channels": m.top_channels,
                      "maps": m.maps.numpy()} for m in maps],
            "preprocess": plain.preprocess, "pid": os.getpid()}
