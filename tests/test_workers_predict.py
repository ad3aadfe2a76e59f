"""Predict's and the Lab's work in worker processes (explorer.runtime.tasks, explorer.lab.signal):
a prediction, Grad-CAM with the feature maps and the signal probe run in another process while this
one's ``torch.get_num_threads()`` never changes and no model is loaded here; the model stays in
the worker for the next request, which the same worker answers; the answers are the ones this
process computes itself; a bad photo, a checkpoint that is not one and a memory refusal come
back in their own words; cancel ends the job and its worker. Then the pages, in AppTest."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from tolerances import PROB_ATOL
from worker_helpers import ThreadWatch, alive, wait_for

from explorer.core.images import ImageError, load_image, sample_images, to_batch
from explorer.runtime import workers
from explorer.runtime.jobs import JobQueue
from explorer.runtime.loaded import load_model, model_key, process_models
from explorer.runtime.memory import MemoryRefused
from explorer.weights.formats import WeightsError

PREDICT = "explorer.runtime.tasks:predict_photos"
SEES = "explorer.runtime.tasks:what_it_sees"
SIGNAL = "explorer.lab.signal:signal_job"
GOOGLENET = {"variant": "googlenet", "weights": "IMAGENET1K_V1"}
pytestmark = pytest.mark.filterwarnings("ignore:dropped .* auxiliary-head tensors:UserWarning")


@pytest.fixture
def local_pool(monkeypatch, tmp_path, weights_dir):
    """A fresh pool as the process's pool, the tests' weights folder, a cache of its own."""
    monkeypatch.delenv(workers.RAY_ENV, raising=False)
    monkeypatch.setenv("INCEPTION_EXPLORER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("INCEPTION_EXPLORER_WEIGHTS", str(weights_dir))
    pool = workers.LocalPool(JobQueue(2))
    monkeypatch.setattr(workers, "_POOL", pool)
    yield pool
    pool.shutdown()
    assert not [pid for pid in pool.pids() if alive(pid)]


def photo(name: str = "cat") -> tuple[str, bytes]:
    return f"{name}.jpg", sample_images()[name].read_bytes()


def submit(target: str, label: str = "job", **kwargs) -> workers.Job:
    return workers.submit(target, kwargs, label=label, memory=10**8,
                          affinity=model_key(kwargs.get("variant", ""), kwargs.get("weights", "")))


def test_a_prediction_and_grad_cam_run_in_a_worker_that_keeps_the_model(local_pool, weights_dir):
    threads = torch.get_num_threads()
    watch = ThreadWatch()
    key = model_key("googlenet", "IMAGENET1K_V1", "cpu")
    photos = [photo("cat"), photo("rocket")]
    first = submit(PREDICT, **GOOGLENET, photos=photos).result(180)
    again = submit(PREDICT, **GOOGLENET, photos=photos[:1]).result(60)
    seen = submit(SEES, **GOOGLENET, photo=photos[0]).result(60)
    assert watch.stop() == {threads}
    # another process, which keeps the model: the second request loads nothing, same worker
    assert first["pid"] != os.getpid() and first["pid"] in local_pool.pids()
    assert first["load_s"] is not None and again["load_s"] is None
    assert again["pid"] == seen["pid"] == first["pid"]
    assert local_pool.holds(key) and workers.held("cpu") > 2 * 20e6  # the model and its copy
    assert key not in process_models().keys() and len(process_models()) == 0  # nothing here
    assert first["model"] == "InferenceModel" and first["precision"] == "float32"
    assert first["checkpoint_format"] == "torchvision" and first["device"] == "cpu"
    assert [r["image"] for r in first["results"]] == ["cat.jpg", "rocket.jpg"]
    # what this process computes itself (loaded here only now, after the checks above)
    from explorer.runtime.inference import predict
    from explorer.runtime.saliency import feature_maps, grad_cam

    here = predict([sample_images()["cat"], sample_images()["rocket"]], "googlenet",
                   weights_dir / "googlenet.IMAGENET1K_V1.pth")
    for ours, theirs in zip(first["results"], here):
        assert [c["index"] for c in ours["top"]] == [c["index"] for c in theirs["top"]]
        assert [c["prob"] for c in ours["top"]] == pytest.approx(
            [c["prob"] for c in theirs["top"]], abs=PROB_ATOL)
    mine, alone = first["results"][0]["top"], again["results"][0]["top"]  # batch 2, then 1
    assert [c["index"] for c in alone] == [c["index"] for c in mine]
    assert [c["prob"] for c in alone] == pytest.approx([c["prob"] for c in mine], abs=PROB_ATOL)
    plain = load_model("googlenet", weights_dir / "googlenet.IMAGENET1K_V1.pth")
    x = to_batch([load_image(photos[0][1])], plain.preprocess)
    cam, maps = grad_cam(plain.model, x), feature_maps(plain.model, x, channels=16)
    theirs = seen["cam"]
    assert theirs["class_index"] == cam.class_index == first["results"][0]["top"][0]["index"]
    assert theirs["label"] == first["results"][0]["top"][0]["label"] and theirs["block"] == cam.block
    assert isinstance(theirs["heatmap"], np.ndarray) and theirs["heatmap"].dtype == np.float32
    assert theirs["heatmap"].shape == (224, 224) and theirs["coarse"].shape == tuple(cam.coarse.shape)
    np.testing.assert_allclose(theirs["coarse"], cam.coarse.numpy(), atol=1e-4)
    assert [m["name"] for m in seen["maps"]] == [m.name for m in maps]
    for ours, mine in zip(seen["maps"], maps):
        assert ours["shape"] == mine.shape and ours["maps"].shape == tuple(mine.maps.shape)
    assert seen["preprocess"] == plain.preprocess


def test_the_lab_signal_probe_runs_in_a_worker_and_is_cached_for_the_server(local_pool):
    from explorer.lab.signal import cached_signal, signal, signal_estimate

    asked = [{"variant": "inception_resnet_v2", "width": 0.1, "repeats": [1, 1, 1], "scale": s}
             for s in (1.0, 0.1)]
    threads = torch.get_num_threads()
    watch = ThreadWatch()
    job = workers.submit(SIGNAL, {"asked": asked}, label="signal",
                         memory=signal_estimate(asked).total)
    out = job.result(300)
    assert watch.stop() == {threads}
    assert job.pid != os.getpid() and job.progress == (2, 2)
    assert [o["config"]["scale"] for o in out] == [1.0, 0.1]
    # written to the cache by the worker: read here without running anything
    assert [cached_signal(**o, compute=False) for o in asked] == out
    mine = signal(**asked[0])  # this process's own numbers, after the checks
    assert [r["name"] for r in out[0]["rows"]] == [r["name"] for r in mine["rows"]]
    for ours, theirs in zip(out[0]["rows"], mine["rows"]):
        assert ours["activation_std"] == pytest.approx(theirs["activation_std"], rel=1e-5)
        assert ours["grad_norm"] == pytest.approx(theirs["grad_norm"], rel=1e-4)


def test_a_bad_photo_a_broken_checkpoint_and_a_refusal_come_back_in_their_own_words(
        local_pool, tmp_path, monkeypatch):
    bad = ("notes.jpg", b"this is a note, not a photo")
    with pytest.raises(ImageError) as said_here:
        load_image(bad[1], name=bad[0])
    answer = submit(PREDICT, **GOOGLENET, photos=[bad, photo()]).result(180)
    assert answer["results"][0] == {"image": "notes.jpg", "error": str(said_here.value)}
    assert answer["results"][1]["top"]  # the other photo is answered
    with pytest.raises(workers.JobFailed) as failed:
        submit(SEES, **GOOGLENET, photo=bad).result(60)
    cause = failed.value.cause
    assert type(cause) is ImageError and str(cause) == str(said_here.value)
    assert cause.name == "notes.jpg"

    broken = tmp_path / "uploads" / "broken.pth"
    broken.parent.mkdir()
    broken.write_bytes(b"\x80\x02]q\x00" * 5)
    with pytest.raises(WeightsError) as said_here:
        load_model("googlenet", broken)
    with pytest.raises(workers.JobFailed) as failed:
        submit(PREDICT, variant="googlenet", weights=str(broken), photos=[photo()]).result(60)
    cause = failed.value.cause
    assert type(cause) is WeightsError and str(cause) == str(said_here.value)
    assert str(cause).startswith("broken.pth is not a readable PyTorch checkpoint")

    # the worker's own guard (before it makes the optimised copy) under a budget of 1 MB: the
    # same refusal, estimate and budget (a fresh worker: the copy the first answer made is kept)
    local_pool.shutdown()
    monkeypatch.setenv("INCEPTION_EXPLORER_MAX_MEMORY", "1MB")
    with pytest.raises(workers.JobFailed) as failed:
        submit(PREDICT, **GOOGLENET, photos=[photo()], precision="float32").result(60)
    cause = failed.value.cause
    assert type(cause) is MemoryRefused
    assert str(cause).startswith("a float32 inference copy of googlenet needs about")
    assert "INCEPTION_EXPLORER_MAX_MEMORY=1MB" in str(cause) and cause.budget.limit == 10**6


def test_cancel_ends_a_prediction_and_its_worker(local_pool):
    photos = [(f"cat {i}.jpg", photo()[1]) for i in range(256)]  # eight batches of 32
    job = submit(PREDICT, **GOOGLENET, photos=photos)
    assert wait_for(lambda: job.progress == ("running", 256), 180), (job.state, job.progress)
    pid = job.pid
    job.cancel()
    with pytest.raises(workers.JobCancelled):
        job.result(30)
    assert job.state == workers.CANCELLED
    assert wait_for(lambda: not alive(pid), 10)
    assert not local_pool.holds(model_key("googlenet", "IMAGENET1K_V1")) and workers.held() == 0


# -- the pages ----------------------------------------------------------------------------------

def _workers_said(at) -> list[int]:
    return [int(c.value.split("pid ")[1].split(")")[0]) for c in at.caption
            if c.value.startswith("Ran as a worker process")]


def test_predict_page_answers_from_a_worker_and_loads_nothing_here(local_pool):
    from apptest_helpers import app, clean

    from explorer.ui import answers

    answers._predictions.clear()  # answered for other tests: asked again here
    answers._seen.clear()
    threads = torch.get_num_threads()
    at = clean(app("predict", predict_variants="googlenet"))
    assert not at.error, [e.value for e in at.error]
    pids = _workers_said(at)
    assert len(pids) == 2, pids  # the prediction, then Grad-CAM and the feature maps
    assert os.getpid() not in pids and set(pids) <= set(local_pool.pids())
    assert len(at.get("plotly_chart")) == 1 and len(at.get("image")) == 3
    assert torch.get_num_threads() == threads and len(process_models()) == 0
    # a rerun (another block) asks no worker: the answers are kept
    at.select_slider(key="see_block_googlenet").set_value("inception_3.inception_3a").run()
    assert not at.exception and not _workers_said(at)


def test_lab_page_measures_the_signal_in_a_worker(local_pool):
    from apptest_helpers import APP, clean
    from streamlit.testing.v1 import AppTest

    threads = torch.get_num_threads()
    at = AppTest.from_file(APP, default_timeout=300)
    at.switch_page("../pages/lab.py")
    at.session_state["lab_sig_width"] = 0.1
    clean(at.run())
    pids = _workers_said(at)
    assert len(pids) == 1 and pids[0] != os.getpid()
    assert "Inception-v4" in at.get("plotly_chart")[0].proto.spec
    assert torch.get_num_threads() == threads
    clean(at.run())  # again: from the cache, no job
    assert not _workers_said(at) and at.get("plotly_chart")
