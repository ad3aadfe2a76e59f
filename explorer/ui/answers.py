"""Answers computed in worker processes for the Predict and Lab pages, shared by every session.

Predictions, Grad-CAM with the feature maps, and the Lab's signal probe run in a worker process or
a Ray task (``explorer.runtime.tasks``, ``explorer.lab.signal.signal_job``), never in this
server's threads: the models are loaded, and stay, in the worker. What comes back is plain data,
kept here by request (``explorer.runtime.workers.Answers``): a rerun of the page (a slider
moved, another photo toggled) shows it again without a job, and sessions asking the same
question at once share one job. A job fails with the exception its worker raised, which is said
here as the page said it when the work ran in this process.
"""

from __future__ import annotations

import dataclasses
import hashlib

import streamlit as st

from explorer.core.i18n import _
from explorer.core.text import md_escape
from explorer.runtime import workers
from explorer.runtime.loaded import LOAD_ADVICE, load_estimate, model_key
from explorer.ui import heavy


@st.cache_resource
def _predictions() -> workers.Answers:
    return workers.Answers(256)  # top-k lists: small


@st.cache_resource
def _seen() -> workers.Answers:
    return workers.Answers(64)   # a heatmap and every block's feature maps: megabytes each


@st.cache_resource
def _signals() -> workers.Answers:
    return workers.Answers(64)


def _digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _engine() -> str:
    import os

    from explorer.runtime.ort_engine import ENGINE_ENV
    return os.environ.get(ENGINE_ENV, "")


def _estimate(variant: str, weights: str, device: str, images: int, what: str | None = None):
    """What a job on ``variant`` needs: loading it and running ``images`` photos; without the
    weights when a worker holds the model already (the budget counts them as held)."""
    estimate = load_estimate(variant, images, device=device)
    if workers.holds(model_key(variant, weights, device)):
        estimate = dataclasses.replace(estimate, weights=0)
    return dataclasses.replace(estimate, what=what) if what else estimate


def _said(err: BaseException, variant: str, label: str, spec) -> bool:
    """A failure the job's worker raised, said as the page says it (True), or False."""
    from explorer.core.images import ImageError
    from explorer.runtime.memory import MemoryRefused
    from explorer.runtime.offline import missing_weights
    from explorer.variants import ConfigError
    from explorer.weights.download import DownloadError
    from explorer.weights.formats import WeightsError
    from explorer.weights.pretrained import UnknownWeights

    if isinstance(err, MemoryRefused):
        st.error(md_escape(err), icon=":material/memory:")
    elif isinstance(err, DownloadError):  # the socket's words help nobody here: say what to do
        st.warning(missing_weights(variant, spec), icon=":material/cloud_off:")
    elif isinstance(err, ImageError):
        st.error(md_escape(err), icon=":material/broken_image:")
    elif isinstance(err, (WeightsError, UnknownWeights, ConfigError)):
        st.error(_("{weights} does not load into {variant}: {error}").format(
            weights=md_escape(label), variant=variant, error=md_escape(err)))
    else:
        return False
    return True


def _follow(store: workers.Answers, ask, job, estimate, *, key, on_progress=None,
            on_error=None):
    answer = heavy.follow(job, estimate, key=key, on_progress=on_progress, on_error=on_error,
                          keep_running=True)
    if answer is not None:
        store.answered(ask, answer)
    return answer


def predict(variant: str, weights: str, label: str, spec, *, device: str, precision: str,
            photos: list[tuple[str, bytes]], key: str) -> dict | None:
    """``explorer.runtime.tasks.predict_photos``'s answer for ``photos`` (name, bytes), or None
    after saying why not (a checkpoint that does not load, weights that cannot be downloaded,
    the memory budget). ``label`` names the weights for the user (an upload's file name, never a
    server path); ``spec`` is the registry's entry of a tag (None for a file)."""
    plain = model_key(variant, weights, device)
    ask = (plain, precision, _engine(), tuple(_digest(raw) for _name, raw in photos))
    store = _predictions()
    answer, job = store.lookup(ask)
    if answer is not None:
        return answer
    held = workers.holds(plain)
    estimate = _estimate(variant, weights, device, len(photos))
    if job is None:
        if heavy.cancelled(key):  # the Cancel button's rerun: not in line again until asked
            return None
        job = heavy.start(_("predicting with {variant}").format(variant=variant), estimate,
                          "explorer.runtime.tasks:predict_photos",
                          {"variant": variant, "weights": weights, "photos": photos,
                           "device": device, "precision": precision, "k": 5},
                          advice=_(LOAD_ADVICE), affinity=plain, escape=True)
        if job is None:
            return None
        store.asked(ask, job)
    bar = None if held else st.progress(
        0.0, text=_("Loading the {variant} weights ({weights})...").format(
            variant=variant, weights=md_escape(label)))

    def progress(payload):
        if bar is not None and payload[0] == "download":
            done, total = payload[1:]
            size = (_("{done} MB of {total} MB").format(done=f"{done / 1e6:.1f}",
                                                         total=f"{total / 1e6:.1f}")
                    if total else f"{done / 1e6:.1f} MB")
            bar.progress(min(1.0, done / total) if total else 0.0,
                         text=_("Downloading {variant} weights: {size}").format(variant=variant,
                                                                                size=size))
        elif bar is not None and payload[0] == "running":
            bar.progress(1.0, text=_("Running {variant} on {n} photo(s)...").format(
                variant=variant, n=payload[1]))

    try:
        return _follow(store, ask, job, estimate, key=key, on_progress=progress,
                       on_error=lambda err: _said(err, variant, label, spec))
    finally:
        if bar is not None:
            bar.empty()


def what_it_sees(variant: str, weights: str, label: str, spec, *, device: str,
                 photo: tuple[str, bytes], key: str) -> dict | None:
    """``explorer.runtime.tasks.what_it_sees`` (Grad-CAM and the feature maps of every block)
    for one photo, on the plain model its worker keeps, or None after saying why not."""
    plain = model_key(variant, weights, device)
    ask = (plain, _digest(photo[1]))
    store = _seen()
    answer, job = store.lookup(ask)
    if answer is not None:
        return answer
    estimate = _estimate(variant, weights, device, 1)
    if job is None:
        if heavy.cancelled(key):
            return None
        job = heavy.start(_("Grad-CAM and feature maps of {variant}").format(variant=variant),
                          estimate, "explorer.runtime.tasks:what_it_sees",
                          {"variant": variant, "weights": weights, "photo": photo,
                           "device": device, "channels": 16},
                          advice=_(LOAD_ADVICE), affinity=plain, escape=True)
        if job is None:
            return None
        store.asked(ask, job)
    with st.spinner("Running Grad-CAM and collecting feature maps..."):
        return _follow(store, ask, job, estimate, key=key,
                       on_error=lambda err: _said(err, variant, label, spec))


def lab_signals(asked: list[dict], *, key: str) -> list[dict] | None:
    """The Lab's signal probe (``explorer.lab.signal``) for each of ``asked`` (options of
    ``cached_signal``): from the on-disk cache where it was measured before, the others measured
    in one worker job (it writes them to the cache). None after saying why not."""
    import json

    from explorer.core.cache import cache_dir
    from explorer.lab.signal import cached_signal, signal_estimate

    folder = str(cache_dir())
    store = _signals()
    asks = [json.dumps([o, folder], sort_keys=True, default=str) for o in asked]
    found = {}
    for ask, options in zip(asks, asked):
        answer, _job = store.lookup(ask)
        if answer is None:
            answer = cached_signal(**options, compute=False)
            if answer is not None:
                store.answered(ask, answer)
        if answer is not None:
            found[ask] = answer
    missing = [(ask, o) for ask, o in zip(asks, asked) if ask not in found]
    if missing:
        whole = json.dumps(missing, sort_keys=True)
        done, job = store.lookup(whole)
        if done is None:
            need = signal_estimate([o for _a, o in missing])
            if job is None:
                if heavy.cancelled(key):
                    return None
                job = heavy.start(_("the signal through {n} network(s)").format(n=len(missing)),
                                  need, "explorer.lab.signal:signal_job",
                                  {"asked": [o for _a, o in missing]})
                if job is None:
                    return None
                store.asked(whole, job)
            bar = st.progress(0.0, text=_("one forward and backward pass per network..."))
            try:
                done = _follow(store, whole, job, need, key=key,
                               on_progress=lambda p: bar.progress(
                                   p[0] / p[1], text=_("one forward and backward pass per "
                                                       "network...")))
            finally:
                bar.empty()
            if done is None:
                return None
        for (ask, _o), answer in zip(missing, done):
            store.answered(ask, answer)
            found[ask] = answer
    return [found[ask] for ask in asks]
