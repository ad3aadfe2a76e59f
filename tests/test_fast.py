"""explorer.for_inference: the optimised copy gives the plain model's logits (float32, within
1e-4), leaves the original untouched, and says clearly what it cannot do."""

from __future__ import annotations

import copy
import re

import pytest
import torch
from networks import distinct_layouts
from tolerances import LOGIT_ATOL
from torch import nn

import explorer
from explorer.runtime.fast import (
    InferenceModel,
    agreement,
    cpu_has_bf16,
    fold_batchnorm,
    precision_name,
    supported_precisions,
    unsupported,
)
from explorer.runtime.modules import ConvBN, Residual
from explorer.variants import VARIANTS, ConfigError, min_input_size

REFERENCES = ["torchvision_googlenet", "torchvision_inception_v3", "timm_inception_v3",
              "timm_inception_v4", "timm_inception_resnet_v2"]


def snapshot(model: nn.Module) -> dict:
    """Everything for_inference could change on the original."""
    return {"state": {k: v.clone() for k, v in model.state_dict().items()},
            "classes": [type(m) for m in model.modules()],
            "grad": [p.requires_grad for p in model.parameters()],
            "training": [m.training for m in model.modules()],
            "formats": [p.is_contiguous() for p in model.parameters()]}


def assert_unchanged(model, before):
    after = snapshot(model)
    assert after["classes"] == before["classes"]
    assert after["grad"] == before["grad"] and after["training"] == before["training"]
    assert after["formats"] == before["formats"]
    # the same keys, each tensor bit for bit (dtype and device included)
    torch.testing.assert_close(after["state"], before["state"], rtol=0, atol=0)


@pytest.mark.parametrize("name", REFERENCES)
def test_float32_copy_gives_the_reference_logits_and_leaves_the_model_alone(reference_zoo, name):
    ref = reference_zoo[name]
    model = explorer.build(ref.spec.variant, weights=ref.path, aux_logits=ref.spec.has_aux).eval()
    before = snapshot(model)
    fast = explorer.for_inference(model)
    assert_unchanged(model, before)
    # no BN is left to run: every one follows a conv in these networks
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    assert all(m.bn is None for m in fast.modules() if isinstance(m, ConvBN))
    out = fast(ref.x)
    assert out.dtype == torch.float32 and out.shape == ref.logits.shape
    # 1e-4 is the contract for logits of order one (googlenet, v3 from torchvision, IR-v2 here);
    # float32 rounding is relative, and timm's v3 and v4 reach logits of ~45 with the zoo's
    # statistics, where any other order of the same operations (channels-last alone, without
    # folding) moves them by ~3e-3: the tolerance scales with the logits' size
    atol = LOGIT_ATOL * max(1.0, ref.logits.abs().max().item())
    assert (ref.logits[0] - ref.logits[1]).abs().max() > 100 * atol  # a test that can fail
    with torch.no_grad():
        plain = model(ref.x)
    torch.testing.assert_close(out, plain, atol=atol, rtol=0)
    torch.testing.assert_close(out, ref.logits, atol=atol, rtol=0)
    assert_unchanged(model, before)  # running the copy does not touch the original either


# every other variant and layout (conv bias + BN, no BN at all, BN1d heads, residual scales),
# at width 0.25, with randomised BN statistics so that folding matters; the aux heads and the
# layouts with a reference checkpoint are checked above at full size; bn_inception's two layouts
# are one network (its paper and its Caffe release agree)
WITH_REFERENCES = {("googlenet", "released"), ("inception_v3", "released"),
                   ("inception_v4", "released"), ("inception_resnet_v2", "released"),
                   ("bn_inception", "paper")}
SMALL = [(v, lay) for v, lay in distinct_layouts() if (v, lay) not in WITH_REFERENCES]


@pytest.mark.parametrize(("variant", "layout"), SMALL)
def test_every_variant_folds_to_the_same_logits(variant, layout, randomize_batchnorm):
    lay = VARIANTS[variant].layouts[layout]
    torch.manual_seed(0)
    # a ResNet's 23 or 36 identical blocks fold as its first two do (and, with random BN
    # statistics, would grow float32's rounding past the contract): two per stage
    repeats = tuple(min(r, 2) for r in lay.repeats) if variant.startswith("resnet") else None
    model = explorer.build(variant, layout=layout, width=0.25, num_classes=10, repeats=repeats)
    # a last grid of 3x3 or more: batch statistics of single pixels would make wild logits
    size = max(min_input_size(lay), 96 if variant in ("googlenet", "bn_inception") else 139)
    if not any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
        for conv in (m for m in model.modules() if isinstance(m, nn.Conv2d)):
            # the paper's BN-free GoogLeNet: He init keeps its logits of order one
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
    model = randomize_batchnorm(model, size, seed=7)
    before = snapshot(model)
    fast = explorer.for_inference(model)
    assert_unchanged(model, before)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        plain = model(x)
    out = fast(x)
    # float32 rounding is relative: these small random networks reach logits of up to ~30, so
    # the 1e-4 contract (for logits of order one) is scaled by their size
    atol = LOGIT_ATOL * max(1.0, plain.abs().max().item())
    assert (plain[0] - plain[1]).abs().max() > 100 * atol
    torch.testing.assert_close(out, plain, atol=atol, rtol=0)
    if any(isinstance(m, Residual) for m in model.modules()):
        # scales folded into `up`: the blocks add without a multiply
        assert all(m.scale == 1.0 for m in fast.modules() if isinstance(m, Residual))


def test_folding_handles_conv_bias_and_leaves_other_norms_alone():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, bias=True), nn.BatchNorm2d(4),     # folded (bias)
                        nn.Conv2d(4, 5, 1, bias=False), nn.BatchNorm2d(5),    # folded (no bias)
                        nn.ReLU(), nn.BatchNorm2d(5),                         # after a ReLU: kept
                        nn.Conv2d(5, 6, 1), nn.BatchNorm2d(6, track_running_stats=False))  # kept
    for bn in (net[1], net[3], net[5]):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-1, 1)
    net.eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        expected = net(x)
    folded = copy.deepcopy(net)
    with torch.no_grad():
        assert fold_batchnorm(folded) == 2
    assert [type(m).__name__ for m in folded] == ["Conv2d", "Identity", "Conv2d", "Identity",
                                                 "ReLU", "BatchNorm2d", "Conv2d", "BatchNorm2d"]
    assert folded[2].bias is not None
    with torch.no_grad():
        torch.testing.assert_close(folded(x), expected, atol=1e-5, rtol=0)


def test_precision_errors_are_clear():
    model = explorer.build("googlenet", width=0.25, num_classes=10)
    with pytest.raises(ConfigError, match="float16 inference on CPU: for GPUs only"):
        explorer.for_inference(model, torch.float16)
    for bad in (torch.float64, torch.int8, "half", 3):
        with pytest.raises(ConfigError, match="precision must be one of float32, bfloat16, float16"):
            explorer.for_inference(model, bad)
    with pytest.raises(ConfigError, match="meta device"):
        explorer.for_inference(explorer.build("googlenet", device="meta"))
    fast = explorer.for_inference(model, "float32")
    with pytest.raises(RuntimeError, match="cannot be trained"):
        fast.train()
    assert precision_name(None) == precision_name(torch.float32) == "float32"
    assert "float16" not in supported_precisions("cpu")


def test_a_cpu_without_native_bfloat16_is_told_why(monkeypatch):
    monkeypatch.setattr("explorer.runtime.fast.cpu_has_bf16", lambda: False)
    assert supported_precisions("cpu") == ["float32"]
    with pytest.raises(ConfigError, match="bfloat16 inference on CPU: this CPU has no native"):
        explorer.for_inference(explorer.build("googlenet", width=0.25, num_classes=10),
                               torch.bfloat16)


@pytest.mark.gpu  # skipped without CUDA (conftest)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_gpu_copies_take_and_return_float32(dtype, randomize_batchnorm):
    torch.manual_seed(0)
    model = randomize_batchnorm(explorer.build("inception_v3", width=0.25, num_classes=10), 139)
    x = torch.randn(4, 3, 139, 139, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        plain = model(x)
    out = explorer.for_inference(model.cuda(), dtype)(x.cuda()).cpu()
    assert out.dtype == torch.float32
    # float16 keeps 11 significant bits, bfloat16 8: a few per cent of the logits' size at most
    assert (out - plain).abs().max().item() < 0.1 * plain.abs().max().item()


@pytest.mark.gpu  # skipped without CUDA (conftest)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpu_copies_replay_a_cuda_graph_per_shape(dtype, randomize_batchnorm):
    """A replayed graph answers what the same copy answers eagerly, for each new input (its
    input buffer is refilled), without handing out its own buffers (an answer survives the next
    call), and only the last GRAPH_SHAPES shapes are kept."""
    from explorer.runtime.fast import GRAPH_SHAPES
    torch.manual_seed(0)
    model = randomize_batchnorm(explorer.build("inception_resnet_v2", width=0.25, num_classes=10),
                                75).cuda()
    graphs = explorer.for_inference(model, dtype)
    eager = explorer.for_inference(model, dtype, cuda_graphs=False)
    assert graphs.cuda_graphs and not eager.cuda_graphs
    gen = torch.Generator().manual_seed(3)
    xs = [torch.randn(batch, 3, 75, 75, generator=gen).cuda() for batch in (1, 1, 4)]
    answers = [graphs(x) for x in xs]
    assert len(graphs._graphs) == 2  # batch 1 captured once, replayed for the second input
    for x, got in zip(xs, answers):
        want = eager(x)
        # the same kernels on the same data; cuDNN may pick another algorithm under capture
        torch.testing.assert_close(got, want, atol=1e-3 * want.abs().max().item(), rtol=0)
    assert (answers[0] - answers[1]).abs().max() > 1e-3  # two inputs, two answers
    saved = torch.backends.cudnn.allow_tf32
    try:  # recorded kernels keep their maths: another TF32 setting is another graph
        torch.backends.cudnn.allow_tf32 = not saved
        graphs(xs[0])
        assert len(graphs._graphs) == 3
    finally:
        torch.backends.cudnn.allow_tf32 = saved
    for batch in range(2, 3 + GRAPH_SHAPES):
        graphs(torch.randn(batch, 3, 75, 75, device="cuda"))
    assert len(graphs._graphs) == GRAPH_SHAPES


def test_cpu_copies_run_eagerly():
    fast = explorer.for_inference(explorer.build("googlenet", width=0.25, num_classes=10))
    assert not fast.cuda_graphs
    assert fast(torch.randn(1, 3, 96, 96)).shape == (1, 10) and not fast._graphs


def test_bfloat16_on_this_cpu(randomize_batchnorm):
    """bfloat16 where the CPU has it natively (float32 in and out); a clear error elsewhere."""
    torch.manual_seed(0)
    model = randomize_batchnorm(explorer.build("inception_v3", width=0.25, num_classes=10), 139)
    if not cpu_has_bf16():
        assert "bfloat16" not in supported_precisions("cpu")
        with pytest.raises(ConfigError, match="no native bfloat16"):
            explorer.for_inference(model, torch.bfloat16)
        return
    assert unsupported("bfloat16", "cpu") is None
    fast = explorer.for_inference(model, torch.bfloat16)
    assert isinstance(fast, InferenceModel) and fast.dtype == torch.bfloat16
    assert all(p.dtype == torch.bfloat16 for p in fast.parameters())
    x = torch.randn(4, 3, 139, 139, generator=torch.Generator().manual_seed(2))
    out = fast(x)
    assert out.dtype == torch.float32
    with torch.no_grad():
        plain = model(x)
    stats = agreement(plain, out)
    assert stats["images"] == 4 and 0 <= stats["top1_agreement"] <= 1
    # bfloat16 keeps 8 significant bits (2**-9 relative rounding per operation): through ~50
    # layers the logits move by a few per cent of their largest size (measured: 4-6 % on
    # random networks), not by a tenth of it
    assert stats["max_logit_change"] < 0.1 * plain.abs().max().item()
    assert stats["max_logit_change"] > 1e-3 * plain.abs().max().item()  # it really ran in bf16


def test_predict_command_precision(reference_zoo, capsys):
    """``predict --precision``: float32 (the default) and bfloat16 where the CPU has it; float16
    and unknown names are one-line errors (exit status 2)."""
    import json
    import warnings

    from explorer.cli import main as cli_main
    from explorer.core.images import sample_images

    cat = str(sample_images()["cat"])
    argv = ["predict", cat, "--variant", "inception_resnet_v2", "--weights",
            str(reference_zoo["timm_inception_resnet_v2"].path), "--top-k", "3", "--json"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli_main(argv) == 0
        default = json.loads(capsys.readouterr().out)[0]["top"]
        assert cli_main([*argv, "--precision", "float32"]) == 0
        assert json.loads(capsys.readouterr().out)[0]["top"] == default
        status = cli_main([*argv, "--precision", "bfloat16"])
    if cpu_has_bf16():
        assert status == 0
        low = json.loads(capsys.readouterr().out)[0]["top"]
        assert len(low) == 3 and low != default  # computed in bfloat16: not bit-identical
        assert abs(low[0]["prob"] - default[0]["prob"]) < 0.05
    else:
        assert status == 2 and "no native bfloat16" in capsys.readouterr().err
    assert cli_main([*argv, "--precision", "float16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "float16 inference on CPU: for GPUs only" in err[0]
    assert cli_main([*argv, "--precision", "double"]) == 2
    assert "invalid choice: 'double'" in capsys.readouterr().err


def test_predict_page_precision_choice(weights_dir, monkeypatch):
    """The page answers with the optimised copy in the chosen precision (float32 by default),
    says why a precision is not offered, and keeps Grad-CAM on the plain model; both stay loaded
    in the worker process that answered (explorer.runtime.loaded.process_models there)."""
    from apptest_helpers import predict_page

    from explorer.runtime import workers
    from explorer.runtime.loaded import model_key

    monkeypatch.setenv("INCEPTION_EXPLORER_WEIGHTS", str(weights_dir))
    plain = model_key("googlenet", "IMAGENET1K_V1", "cpu")

    def copy_kept(precision):
        return workers.holds((*plain, precision, "torch"))  # the conftest's engine

    at = predict_page(["googlenet"])
    assert not at.exception, [e.value for e in at.exception]
    radio = at.radio(key="predict_precision")
    assert radio.value == "float32" and list(radio.options) == supported_precisions("cpu")
    captions = [c.value for c in at.caption]
    assert any(c.startswith("float16 is not offered: for GPUs only")
               for c in captions)
    assert any(re.search(r"1 image\(s\) in \d+ ms on CPU, float32$", c) for c in captions)
    assert len(at.get("image")) == 3  # the crop, Grad-CAM (plain model), the feature maps
    assert workers.holds(plain) and copy_kept("float32")
    if not cpu_has_bf16():
        assert "bfloat16 is not offered" in " ".join(captions)
        return
    radio.set_value("bfloat16").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(re.search(r"1 image\(s\) in \d+ ms on CPU, bfloat16$", c.value) for c in at.caption)
    assert copy_kept("bfloat16")
    assert len(at.get("plotly_chart")) == 1 and len(at.get("image")) == 3
