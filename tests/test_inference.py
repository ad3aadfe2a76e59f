"""Predictions: the weights registry, our pipeline against the reference ones, the command line.

No real weights can be downloaded here: the reference models get random weights (and randomised
batch-norm statistics, see conftest), are saved to files, served from a loopback HTTP server
where a download is tested, and our predictions are compared with what the reference library's
own pipeline (torchvision's ``weights.transforms()`` + its model, timm's data config +
transforms + its model) says about the same image.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from tolerances import PROB_ATOL

import explorer
from explorer.analysis.published import best_published
from explorer.cli import main as cli_main
from explorer.core.images import sample_images
from explorer.runtime.inference import predict
from explorer.runtime.loaded import ModelCache, load_model
from explorer.weights.formats import WeightsError
from explorer.weights.pretrained import REGISTRY, UnknownWeights, find_spec, imagenet_labels, specs_for

ROOT = Path(__file__).resolve().parents[1]
TIMM_TAGS = [s for s in REGISTRY if s.checkpoint_format == "timm"]


def probs_of(logits: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits.float(), dim=1)


def reference_top(probs: torch.Tensor, k: int = 5) -> list[tuple[int, float]]:
    values, indices = probs.topk(k)
    return [(int(i), float(v)) for v, i in zip(values, indices)]


def assert_same_top(ours: list[dict], reference: list[tuple[int, float]], tol: float = PROB_ATOL):
    """The classes and their order exactly; the probabilities within what logits 1e-4 apart
    allow (see tests/tolerances.py: ours and the reference run different float32 operations)."""
    assert [t["index"] for t in ours] == [i for i, _ in reference]
    for t, (_, p) in zip(ours, reference):
        assert t["prob"] == pytest.approx(p, abs=tol)


# ---------------------------------------------------------------------------- the registry


def test_labels_are_torchvisions_categories():
    from torchvision.models import Inception_V3_Weights
    assert imagenet_labels() == Inception_V3_Weights.IMAGENET1K_V1.meta["categories"]
    assert imagenet_labels()[281] == "tabby"


@pytest.mark.parametrize("spec", [s for s in REGISTRY if s.checkpoint_format == "torchvision"],
                         ids=lambda s: s.name)
def test_torchvision_specs_match_torchvision(spec):
    import torchvision.models as tvm
    enum = {"googlenet": tvm.GoogLeNet_Weights, "inception_v3": tvm.Inception_V3_Weights}.get(
        spec.variant) or getattr(tvm, f"ResNet{spec.variant[6:]}_Weights")
    weights = enum[spec.tag]
    assert spec.url == weights.url
    assert spec.sha256_prefix and spec.sha256_prefix in weights.url
    assert (spec.top1, spec.top5) == (weights.meta["_metrics"]["ImageNet-1K"]["acc@1"],
                                      weights.meta["_metrics"]["ImageNet-1K"]["acc@5"])
    t = weights.transforms()
    assert (spec.preprocess.input_size, spec.preprocess.resize_size) == (t.crop_size[0], t.resize_size[0])
    assert spec.preprocess.interpolation == t.interpolation.value
    if spec.variant.startswith("resnet"):
        assert (spec.preprocess.mean, spec.preprocess.std) == (tuple(t.mean), tuple(t.std))
    else:  # transform_input folded in: ImageNet normalisation then transform_input = 0.5, 0.5
        assert spec.preprocess.mean == spec.preprocess.std == (0.5, 0.5, 0.5)


@pytest.mark.parametrize("spec", TIMM_TAGS, ids=lambda s: s.name)
def test_timm_specs_match_timm(spec):
    import timm
    cfg = timm.create_model(spec.name, pretrained=False).pretrained_cfg
    assert cfg["hf_hub_id"] == spec.hub_id
    assert cfg["input_size"] == (3, spec.preprocess.input_size, spec.preprocess.input_size)
    # timm resizes the shorter side to floor(input / crop_pct)
    assert spec.preprocess.resize_size == math.floor(spec.preprocess.input_size / cfg["crop_pct"])
    assert spec.preprocess.interpolation == cfg["interpolation"]
    assert spec.preprocess.mean == pytest.approx(cfg["mean"])
    assert spec.preprocess.std == pytest.approx(cfg["std"])


def test_every_default_weights_accuracy_is_the_published_one():
    for variant in explorer.list_variants():
        specs = specs_for(variant)
        if specs:
            assert best_published(variant).top1 == specs[0].top1, variant


def test_tags_are_found_with_or_without_the_variant_and_unknown_ones_listed():
    assert find_spec("inception_v4", "tf_in1k") is find_spec("inception_v4", "inception_v4.tf_in1k")
    assert find_spec("inception_v3", "DEFAULT").tag == "IMAGENET1K_V1"
    with pytest.raises(UnknownWeights, match="tf_in1k, tf_ens_adv_in1k"):
        find_spec("inception_resnet_v2", "nope")
    with pytest.raises(UnknownWeights, match="no public pretrained weights"):
        find_spec("inception_resnet_v1", "DEFAULT")


# ----------------------------------------------------------- predictions vs the references


@pytest.fixture(scope="module")
def photos() -> dict[str, Image.Image]:
    return {name: Image.open(path).convert("RGB") for name, path in sample_images().items()}


def torchvision_reference(name: str, ref, photos):
    """torchvision's own pipeline: weights.transforms() and transform_input=True."""
    import torchvision.models as tvm
    make, enum = {"googlenet": (tvm.googlenet, tvm.GoogLeNet_Weights),
                  "inception_v3": (tvm.inception_v3, tvm.Inception_V3_Weights)}[name]
    model = make(weights=None, aux_logits=True, init_weights=False, transform_input=True)
    model.load_state_dict(torch.load(ref.path, weights_only=True))
    model.eval()
    transform = enum.IMAGENET1K_V1.transforms()
    with torch.no_grad():
        return probs_of(model(torch.stack([transform(p) for p in photos])))


@pytest.mark.parametrize("variant", ["googlenet", "inception_v3"])
def test_torchvision_checkpoint_predicts_like_torchvision(variant, reference_zoo, photos):
    ref = reference_zoo[f"torchvision_{variant}"]
    expected = torchvision_reference(variant, ref, list(photos.values()))
    with pytest.warns(UserWarning, match="auxiliary"):
        results = predict(list(sample_images().values()), variant, ref.path, top_k=5)
    for result, probs in zip(results, expected):
        assert_same_top(result["top"], reference_top(probs))


@pytest.mark.parametrize("tag", ["IMAGENET1K_V2", "IMAGENET1K_V1"])
def test_resnet_weights_predict_like_torchvision(tag, reference_zoo, photos):
    """Each torchvision ResNet-50 weights entry with its own preprocessing (resize 232 or 256)."""
    import torchvision.models as tvm
    ref = reference_zoo["torchvision_resnet50"]
    model = tvm.resnet50(weights=None)
    model.load_state_dict(torch.load(ref.path, weights_only=True))
    model.eval()
    transform = tvm.ResNet50_Weights[tag].transforms()
    pictures = list(photos.values())[:2]
    with torch.no_grad():
        expected = probs_of(model(torch.stack([transform(p) for p in pictures])))
    results = predict(list(sample_images().values())[:2], "resnet50", ref.path, top_k=5,
                      preprocess=find_spec("resnet50", tag).preprocess)
    for result, probs in zip(results, expected):
        assert_same_top(result["top"], reference_top(probs))


def timm_reference(name: str, state: dict, photos) -> torch.Tensor:
    import timm
    from timm.data import create_transform, resolve_data_config
    model = timm.create_model(name, pretrained=False)
    model.load_state_dict(state)
    model.eval()
    transform = create_transform(**resolve_data_config({}, model=model))
    with torch.no_grad():
        return probs_of(model(torch.stack([transform(p) for p in photos])))


def test_resnetv2_checkpoint_predicts_like_timm(reference_zoo, photos):
    """timm's ResNet-v2 (its classifier a 1x1 conv) with the a1h weights' preprocessing."""
    ref = reference_zoo["timm_resnetv2_50"]
    pictures = list(photos.values())[:2]
    expected = timm_reference("resnetv2_50.a1h_in1k", ref.state_dict(), pictures)
    results = predict(list(sample_images().values())[:2], "resnetv2_50", ref.path, top_k=5)
    for result, probs in zip(results, expected):
        assert_same_top(result["top"], reference_top(probs))


@pytest.mark.parametrize("fmt", [".pth", ".safetensors"])
def test_timm_checkpoint_predicts_like_timm(fmt, reference_zoo, photos, tmp_path):
    from safetensors.torch import save_file
    ref = reference_zoo["timm_inception_v4"]
    state = ref.state_dict()
    path = tmp_path / f"inception_v4{fmt}"
    if fmt == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    pictures = list(photos.values())[:2]
    expected = timm_reference("inception_v4.tf_in1k", state, pictures)
    results = predict(list(sample_images().values())[:2], "inception_v4", path, top_k=5)
    for result, probs in zip(results, expected):
        assert_same_top(result["top"], reference_top(probs))


def test_a_file_is_preprocessed_like_the_default_weights_of_its_layout(reference_zoo):
    tv = load_model("inception_v3", reference_zoo["torchvision_inception_v3"].path)
    assert tv.checkpoint_format == "torchvision"
    assert tv.preprocess == find_spec("inception_v3", "IMAGENET1K_V1").preprocess
    tm = load_model("inception_v3", reference_zoo["timm_inception_v3"].path)
    # timm's v3 keys equal torchvision's: the file is torchvision-layout, preprocessed as such
    assert tm.checkpoint_format in ("torchvision", "timm")
    v4 = load_model("inception_v4", reference_zoo["timm_inception_v4"].path)
    assert v4.preprocess == find_spec("inception_v4", "tf_in1k").preprocess
    assert not v4.model.training
    assert not any(p.requires_grad for p in v4.model.parameters()), "shared models are frozen"


def test_a_registry_tag_downloads_verifies_and_predicts(reference_zoo, photos, monkeypatch, tmp_path):
    """The registry's torchvision GoogLeNet entry, with its URL pointed at a loopback server
    serving a checkpoint whose name carries its real SHA-256 prefix."""
    import dataclasses
    import hashlib
    import http.server
    import threading

    from explorer.weights import checkpoints

    ref = reference_zoo["torchvision_googlenet"]
    data = ref.path.read_bytes()
    name = f"googlenet-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    (tmp_path / "srv").mkdir()
    (tmp_path / "srv" / name).write_bytes(data)
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *a, directory=str(tmp_path / "srv"), **kw)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.RequestHandlerClass.log_message = lambda *a: None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        spec = dataclasses.replace(find_spec("googlenet", "IMAGENET1K_V1"),
                                   url=f"http://127.0.0.1:{server.server_port}/{name}",
                                   sha256_prefix=None)
        monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
        monkeypatch.setattr(checkpoints, "find_spec", lambda variant, tag: spec)
        seen = []
        with pytest.warns(UserWarning, match="auxiliary"):
            results = predict([sample_images()["cat"]], "googlenet", "IMAGENET1K_V1",
                              progress=lambda d, t: seen.append(d))
        assert seen[-1] == len(data)
        assert (tmp_path / "torch" / "hub" / "checkpoints" / name).is_file()
    finally:
        server.shutdown()
        server.server_close()
    expected = torchvision_reference("googlenet", ref, [photos["cat"]])
    assert_same_top(results[0]["top"], reference_top(expected[0]))


# ------------------------------------------------------------------- bad input, cache, CLI


def test_one_bad_image_does_not_stop_the_others(reference_zoo, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    with pytest.warns(UserWarning):
        results = predict([sample_images()["cat"], bad, sample_images()["coffee"]], "googlenet",
                          reference_zoo["torchvision_googlenet"].path, top_k=3)
    assert [("top" in r, "error" in r) for r in results] == [(True, False), (False, True), (True, False)]
    assert "notes.jpg" in results[1]["error"]
    assert len(results[0]["top"]) == 3


def test_a_pickle_that_would_run_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": Payload()}, path)
    with pytest.raises(WeightsError, match="could run code"):
        load_model("googlenet", path)
    assert not marker.exists()


def test_model_cache_drops_the_least_recently_used():
    class Fake:
        def __init__(self, n):
            self.nbytes = n

    cache = ModelCache(max_bytes=250)
    loads = []

    def loader(key, n=100):
        return lambda: loads.append(key) or Fake(n)

    cache.get(("a",), loader("a"))
    cache.get(("b",), loader("b"))
    cache.get(("a",), loader("a"))   # a is now the most recent
    cache.get(("c",), loader("c"))   # 300 bytes > 250: b goes
    assert cache.keys() == [("a",), ("c",)]
    assert loads == ["a", "b", "c"]
    assert cache.total_bytes() == 200


def test_model_cache_loads_a_key_once_under_concurrency():
    import threading
    import time

    cache = ModelCache()
    loads = []

    class Fake:
        nbytes = 1

    def load():
        loads.append(1)
        time.sleep(0.2)
        return Fake()

    threads = [threading.Thread(target=cache.get, args=(("k",), load)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1


def test_cli_predict_json_and_exit_status(reference_zoo, tmp_path, capsys):
    bad = tmp_path / "empty.png"
    bad.write_bytes(b"")
    cat = str(sample_images()["cat"])
    ckpt = str(reference_zoo["torchvision_googlenet"].path)
    with pytest.warns(UserWarning):
        status = cli_main(["predict", cat, str(bad), "--variant", "googlenet", "--weights", ckpt,
                           "--top-k", "2", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert status == 1
    assert out[0]["image"] == cat and len(out[0]["top"]) == 2
    assert set(out[0]["top"][0]) == {"index", "label", "prob"}
    assert set(out[1]) == {"image", "error"}
    with pytest.warns(UserWarning):
        assert cli_main(["predict", cat, "--variant", "googlenet", "--weights", ckpt]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0] == cat and len(text) == 6 and text[1].strip().endswith(
        out[0]["top"][0]["label"])


def test_cli_predict_errors_are_one_line(tmp_path):
    cases = [
        ["predict", "x.jpg", "--variant", "inception_v4", "--weights", "nope"],
        ["predict", "x.jpg", "--variant", "nosuch", "--weights", "DEFAULT"],
        ["predict", "x.jpg", "--variant", "googlenet", "--weights", str(tmp_path / "missing.pth")],
        ["predict", "x.jpg", "--variant", "inception_resnet_v1"],
    ]
    for argv in cases:
        proc = subprocess.run([sys.executable, "-m", "explorer", *argv], capture_output=True,
                              text=True, cwd=ROOT, timeout=120)
        assert proc.returncode == 2, (argv, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_cli_weights_lists_the_registry(capsys):
    assert cli_main(["weights", "inception_resnet_v2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["tag"] for r in rows] == ["tf_in1k", "tf_ens_adv_in1k"]
    assert rows[0]["location"].startswith("https://huggingface.co/timm/inception_resnet_v2.tf_in1k")


def test_gpu_out_of_memory_falls_back_to_the_cpu(reference_zoo):
    import dataclasses

    from explorer.runtime.inference import classify_or_fall_back

    with pytest.warns(UserWarning):
        cpu = load_model("googlenet", reference_zoo["torchvision_googlenet"].path)

    class OutOfMemory(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    failing = dataclasses.replace(cpu, model=OutOfMemory())
    photo = Image.open(sample_images()["cat"]).convert("RGB")
    used, tops, note = classify_or_fall_back(failing, [photo], 3, lambda: cpu)
    assert used is cpu and "ran out of memory" in note and "CPU" in note
    assert tops == classify_or_fall_back(cpu, [photo], 3, None)[1]


def test_asking_for_a_missing_gpu_runs_on_the_cpu_with_a_warning(reference_zoo, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # checked on GPU machines too
    path = reference_zoo["torchvision_googlenet"].path
    with pytest.warns(UserWarning, match="no CUDA GPU"):
        results = predict([sample_images()["cat"]], "googlenet", path, device="cuda")
    with pytest.warns(UserWarning, match="auxiliary"):
        on_cpu = predict([sample_images()["cat"]], "googlenet", path, device="cpu")
    assert results == on_cpu  # the same model on the same CPU: the same answer


def test_preprocess_like_overrides_the_guess_for_an_ambiguous_file(reference_zoo, photos, capsys):
    """A torchvision-layout v3 file could be torchvision's or timm's tv_in1k (same keys):
    --preprocess-like picks timm's pipeline, and the probabilities follow it."""
    ref = reference_zoo["timm_inception_v3"]
    cat = str(sample_images()["cat"])
    assert cli_main(["predict", cat, "--variant", "inception_v3", "--weights", str(ref.path),
                     "--preprocess-like", "tf_in1k", "--json"]) == 0
    ours = json.loads(capsys.readouterr().out)[0]["top"]
    expected = timm_reference("inception_v3.tf_in1k", ref.state_dict(), [photos["cat"]])[0]
    assert_same_top(ours, reference_top(expected))
    assert cli_main(["predict", cat, "--variant", "inception_v3", "--weights", str(ref.path),
                     "--preprocess-like", "nope"]) == 2


def test_a_file_in_our_own_layout_says_whose_preprocessing_it_gets(tmp_path):
    path = tmp_path / "mine.pth"
    torch.save(explorer.build("googlenet", width=1.0).state_dict(), path)
    loaded = load_model("googlenet", path)
    assert loaded.checkpoint_format == "explorer"
    assert loaded.notes == ["a file in explorer format: preprocessed like googlenet.IMAGENET1K_V1 "
                            f"({loaded.preprocess.describe()}); choose another if it was trained "
                            "differently"]
