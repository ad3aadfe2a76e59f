"""ONNX Runtime as the float32 engine of explorer.for_inference: the same logits as the
reference model, the export done once and kept on disk, a first call that never waits in "auto",
and clear refusals."""

from __future__ import annotations

import pytest
import torch
from tolerances import LOGIT_ATOL

import explorer
from explorer.runtime import ort_engine
from explorer.variants import ConfigError


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx_cache")


@pytest.fixture
def engine_env(monkeypatch, onnx_cache):
    monkeypatch.setenv("INCEPTION_EXPLORER_CACHE", str(onnx_cache))
    monkeypatch.delenv(ort_engine.ENGINE_ENV, raising=False)  # the shipped default: "auto"
    return onnx_cache


def small_model(seed: int = 0):
    torch.manual_seed(seed)
    model = explorer.build("googlenet", width=0.25, num_classes=10).eval()
    with torch.no_grad():  # logits of order one, not the fc bias alone
        model.train()(torch.randn(4, 3, 96, 96, generator=torch.Generator().manual_seed(seed)))
    return model.eval()


def test_the_packages_the_engine_needs_are_installed():
    # the test extra installs them (CI): a missing one would otherwise silently mean "torch"
    assert ort_engine.available() is None


def test_onnxruntime_engine_gives_the_reference_logits_and_keeps_its_export(
        engine_env, reference_zoo, monkeypatch):
    ref = reference_zoo["torchvision_googlenet"]
    model = explorer.build("googlenet", weights=ref.path, aux_logits=ref.spec.has_aux).eval()
    fast = explorer.for_inference(model, engine="onnxruntime")
    assert fast.engine_for(224, 224) == "torch"  # nothing prepared before the first call
    out = fast(ref.x)
    assert fast.engine_for(224, 224) == "onnxruntime" and fast.ort.last_prepare["exported"]
    assert out.dtype == torch.float32 and out.shape == ref.logits.shape
    torch.testing.assert_close(out, ref.logits, atol=LOGIT_ATOL, rtol=0)
    # the batch size is dynamic: batch 1 and 5 run on the same session
    single = fast(ref.x[:1])
    torch.testing.assert_close(single, ref.logits[:1], atol=LOGIT_ATOL, rtol=0)
    assert fast(torch.randn(5, 3, 224, 224)).shape == (5, 1000)
    assert len(list((engine_env / "onnx").glob("*.onnx"))) == 1
    # its idle threads sleep: spinning ones would slow whatever the server runs next
    options = fast.ort.sessions[(224, 224)].session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"

    # a second copy of the same weights (a new process, say) starts from the file: no export
    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(ort_engine, "export", no_export)
    again = explorer.for_inference(explorer.build("googlenet", weights=ref.path, aux_logits=ref.spec.has_aux))
    assert again.prepare(224, 224) == "onnxruntime" and not again.ort.last_prepare["exported"]
    torch.testing.assert_close(again(ref.x), ref.logits, atol=LOGIT_ATOL, rtol=0)


def test_other_weights_get_their_own_file(engine_env):
    a, b = small_model(0), small_model(1)
    key = ort_engine.weights_key
    assert key(a, 96, 96) != key(b, 96, 96) and key(a, 96, 96) != key(a, 128, 128)
    assert key(a, 96, 96) == key(small_model(0), 96, 96)


def test_auto_answers_at_once_with_pytorch_then_switches(engine_env):
    model = small_model(2)
    x = torch.randn(3, 3, 96, 96, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        want = model(x)
    fast = explorer.for_inference(model)
    assert fast.engine == "auto"
    first = fast(x)  # answered by PyTorch while the export starts in the background
    torch.testing.assert_close(first, want, atol=LOGIT_ATOL, rtol=0)
    assert fast.ort.wait(timeout=300), "the background export did not finish"
    assert not fast.ort.failed and fast.engine_for(96, 96) == "onnxruntime"
    torch.testing.assert_close(fast(x), want, atol=LOGIT_ATOL, rtol=0)
    assert fast.engine_for(64, 64) == "torch"  # another size: its own session, prepared later


def test_a_session_that_disagrees_with_pytorch_is_not_used(engine_env, monkeypatch):
    model = small_model(0)
    real = ort_engine.OrtSession.__call__
    monkeypatch.setattr(ort_engine.OrtSession, "__call__", lambda self, x: real(self, x) + 1.0)
    strict = explorer.for_inference(model, engine="onnxruntime")
    with pytest.raises(RuntimeError, match="differ from PyTorch's"):
        strict(torch.randn(1, 3, 96, 96))
    auto = explorer.for_inference(model)
    x = torch.randn(2, 3, 96, 96)
    with pytest.warns(UserWarning, match="ONNX Runtime engine not used"):
        auto(x)
        assert auto.ort.wait(timeout=300)
    assert auto.engine_for(96, 96) == "torch" and (96, 96) in auto.ort.failed
    with torch.inference_mode():
        torch.testing.assert_close(auto(x), model(x), atol=LOGIT_ATOL, rtol=0)


def test_engine_choices_and_refusals(engine_env, monkeypatch):
    model = small_model(0)
    with pytest.raises(ConfigError, match="engine must be one of auto, torch, onnxruntime"):
        explorer.for_inference(model, engine="tensorrt")
    if "bfloat16" in explorer.runtime.fast.supported_precisions("cpu"):
        # bfloat16 stays on PyTorch (oneDNN's bf16 kernels), whatever the default
        assert explorer.for_inference(model, "bfloat16").ort is None
        with pytest.raises(ConfigError, match="float32 only"):
            explorer.for_inference(model, "bfloat16", engine="onnxruntime")
    assert explorer.for_inference(model, engine="torch").ort is None
    monkeypatch.setenv(ort_engine.ENGINE_ENV, "torch")
    assert explorer.for_inference(model).engine == "torch"
    monkeypatch.setattr(ort_engine, "available", lambda: "onnxruntime not installed (pip ...)")
    monkeypatch.delenv(ort_engine.ENGINE_ENV)
    assert explorer.for_inference(model).engine == "torch"  # auto without the packages
    with pytest.raises(ConfigError, match="onnxruntime not installed"):
        explorer.for_inference(model, engine="onnxruntime")
