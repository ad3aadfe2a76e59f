"""Feature maps and Grad-CAM: against the analysis' shapes and an independent hook-based
reference on a deep copy, and the shared model left exactly as it was.

Every variant is built once per module on the CPU with random weights at a quarter of its
widths (the same blocks, a sixteenth of the cost), its batch-norm statistics calibrated on a
random batch (see conftest) so that activations stay of order one and the logits are not just
the fc bias, at a small input size that still leaves a 2x2 final grid. One full-width
Inception-v3 runs at 299x299.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from PIL import Image
from tolerances import NORMALISED_ATOL, ulps
from torch import nn

import explorer
from explorer.runtime.modules import InceptionNet, materialize
from explorer.runtime.saliency import (
    COLORMAPS,
    BlockMaps,
    block_names,
    channel_grid,
    colorize,
    feature_maps,
    grad_cam,
    overlay,
)
from explorer.spec.compose import classifier_head, conv, network, stage

# Small sizes that fit each variant (see explorer.variants.config.fits) and leave a final grid
# of 2x2, so that the last block's CAM is a real map, at a small CPU cost.
WIDTH = 0.25
SIZES = {"googlenet": 64, "bn_inception": 64, "inception_v2": 107, "inception_v3": 107,
         "inception_v4": 107, "inception_resnet_v1": 107, "inception_resnet_v2": 107}
VARIANTS = list(SIZES)
HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
              "_state_dict_hooks", "_load_state_dict_pre_hooks")


class Zoo:
    """Each variant built once (at WIDTH), with random weights and calibrated batch norms, in
    eval mode."""

    def __init__(self, randomize_batchnorm):
        self._randomize = randomize_batchnorm
        self._models: dict[str, nn.Module] = {}

    def __getitem__(self, variant: str) -> nn.Module:
        if variant not in self._models:
            seed = VARIANTS.index(variant)
            torch.manual_seed(seed)
            model = explorer.build(variant, width=WIDTH)
            self._models[variant] = self._randomize(model, SIZES[variant], seed=seed)
        return self._models[variant]


@pytest.fixture(scope="module", autouse=True)
def _small_tensors(one_thread):
    """Small tensors: one torch thread (see conftest's one_thread)."""


@pytest.fixture(scope="module")
def zoo(randomize_batchnorm) -> Zoo:
    return Zoo(randomize_batchnorm)


def image(size: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(seed))


def reference(model: nn.Module, x: torch.Tensor, cam_blocks: list[str]):
    """The independent reference, on a deep copy: forward hooks keep every block's output
    (``retain_grad`` on those in ``cam_blocks``), then the top class's logit is backpropagated.
    Returns (block outputs, top class, {block: (coarse CAM, heatmap)})."""
    twin = copy.deepcopy(model)
    for p in twin.parameters():
        p.requires_grad_(True)
    outputs = {}

    def keep(name):
        def hook(_m, _i, out):
            if name in cam_blocks:
                out.retain_grad()
            outputs[name] = out
        return hook

    for stage_name in twin.stage_names:
        for block_name, block in getattr(twin, stage_name).named_children():
            block.register_forward_hook(keep(f"{stage_name}.{block_name}"))
    logits = twin(x)
    top = int(logits.argmax())
    logits[0, top].backward()
    cams = {}
    for name in cam_blocks:
        act, grad = outputs[name][0].detach(), outputs[name].grad[0]
        cam = torch.relu((grad.mean(dim=(1, 2))[:, None, None] * act).sum(0))
        coarse = cam / cam.max() if cam.max() > 0 else torch.zeros_like(cam)
        heat = nn.functional.interpolate(coarse[None, None], size=x.shape[-2:], mode="bilinear",
                                         align_corners=False)[0, 0]
        cams[name] = (coarse, heat)
    return {n: out[0].detach() for n, out in outputs.items()}, top, cams


def snapshot(model: nn.Module) -> dict:
    return {
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grads": [p.grad for p in model.parameters()],
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "devices": {p.device for p in model.parameters()},
    }


def assert_unchanged(model: nn.Module, before: dict) -> None:
    for m in model.modules():
        for attr in HOOK_DICTS:
            assert not getattr(m, attr, {}), f"{type(m).__name__}.{attr} is not empty"
    after = snapshot(model)
    assert after["training"] == before["training"]
    assert after["requires_grad"] == before["requires_grad"]
    assert all(g is None for g in after["grads"])
    assert after["devices"] == before["devices"]
    # the same keys, each tensor bit for bit (dtype and device included)
    torch.testing.assert_close(after["state"], before["state"], rtol=0, atol=0)


# ---------------------------------------------------------------------------- every variant


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_against_analysis_and_reference(zoo, variant):
    model, size = zoo[variant], SIZES[variant]
    x = image(size)
    rows = [r for r in explorer.analyze(variant, input_size=size, depth="block", width=WIDTH).rows
            if not r.name.startswith("head.")]
    names = block_names(model)
    mid = names[len(names) // 2]
    outputs, top, cams = reference(model, x, [names[-1], mid])

    # feature maps: one row per block, in order, with the analysis' shapes
    result = feature_maps(model, x, channels=6)
    assert [b.name for b in result] == [r.name for r in rows] == names
    assert [b.shape for b in result] == [tuple(r.output_shape) for r in rows]
    for b in result:
        assert isinstance(b, BlockMaps)
        c, h, w = b.shape
        assert b.maps.shape == (min(6, c), h, w)
        assert b.maps.dtype == torch.float32 and b.maps.device.type == "cpu"
        assert float(b.maps.min()) >= 0.0 and float(b.maps.max()) <= 1.0
        # the top channels really are the highest-mean ones, highest first
        means = outputs[b.name].mean(dim=(1, 2))
        chosen = means[b.top_channels]
        assert len(set(b.top_channels)) == len(b.top_channels)
        assert torch.all(chosen[:-1] >= chosen[1:])
        others = torch.ones(c, dtype=torch.bool)
        others[b.top_channels] = False
        if others.any():
            assert float(chosen.min()) >= float(means[others].max())
        # each map is its channel, min-max normalised
        a = outputs[b.name][b.top_channels].flatten(1)
        lo, hi = a.min(1, keepdim=True).values, a.max(1, keepdim=True).values
        expected = torch.where(hi > lo, (a - lo) / (hi - lo), torch.zeros_like(a))
        torch.testing.assert_close(b.maps.flatten(1), expected, atol=NORMALISED_ATOL, rtol=0)

    # Grad-CAM: by default the top class at the last block; then at a finer, earlier block
    for cam in (grad_cam(model, x), grad_cam(model, x, block=mid)):
        coarse, heat = cams[cam.block]
        assert cam.class_index == top
        assert cam.coarse.shape == coarse.shape and min(coarse.shape) >= 2
        assert cam.heatmap.shape == (size, size)
        torch.testing.assert_close(cam.coarse, coarse, atol=NORMALISED_ATOL, rtol=0)
        torch.testing.assert_close(cam.heatmap, heat, atol=NORMALISED_ATOL, rtol=0)
        for t in (cam.coarse, cam.heatmap):
            assert t.dtype == torch.float32 and t.device.type == "cpu"
            assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0
    assert cams[names[-1]][0].shape == tuple(rows[-1].output_shape[1:])
    assert float(cams[names[-1]][0].max()) == 1.0  # a real map, not a vacuous 0 == 0


def test_feature_maps_selected_blocks(zoo):
    model = zoo["googlenet"]
    x = image(SIZES["googlenet"])
    everything = {b.name: b for b in feature_maps(model, x, channels=4)}
    wanted = ["inception_4.inception_4c", "stem.conv1"]   # given out of order
    picked = feature_maps(model, x[0], channels=4, blocks=wanted)  # (3, S, S) works too
    assert [b.name for b in picked] == ["stem.conv1", "inception_4.inception_4c"]
    for b in picked:
        assert b.top_channels == everything[b.name].top_channels
        assert torch.equal(b.maps, everything[b.name].maps)
    first = feature_maps(model, x, channels=10_000, blocks=["stem.conv1"])[0]
    assert len(first.top_channels) == first.shape[0] == first.maps.shape[0] == 16
    with pytest.raises(ValueError, match="unknown block.*stage.block"):
        feature_maps(model, x, blocks=["inception_4c"])
    with pytest.raises(ValueError, match="channels"):
        feature_maps(model, x, channels=0)
    with pytest.raises(ValueError, match="one preprocessed image"):
        feature_maps(model, torch.randn(2, 3, 64, 64))


def test_grad_cam_of_a_chosen_class(zoo):
    model = zoo["googlenet"]
    x = image(SIZES["googlenet"], seed=1)
    block = "inception_4.inception_4a"
    with torch.no_grad():
        low = int(model(x).argmin())  # not the top class
    cam = grad_cam(model, x, low, block=block)
    assert (cam.class_index, cam.block) == (low, block)
    twin = copy.deepcopy(model)
    act = {}
    twin.get_submodule(block).register_forward_hook(lambda _m, _i, out: act.setdefault("a", out))
    logits = twin(x)
    (grad,) = torch.autograd.grad(logits[0, low], act["a"])
    ref = torch.relu((grad[0].mean(dim=(1, 2))[:, None, None] * act["a"][0]).sum(0)).detach()
    ref = ref / ref.max() if ref.max() > 0 else ref
    torch.testing.assert_close(cam.coarse, ref, atol=NORMALISED_ATOL, rtol=0)
    assert not torch.equal(cam.coarse, grad_cam(model, x, block=block).coarse)


def test_grad_cam_inception_v3_at_299_is_8x8():
    torch.manual_seed(0)
    model = explorer.build("inception_v3")  # full width, as released
    cam = grad_cam(model, image(299, seed=2))
    assert cam.block == "inception_c.mixed_7c"
    assert cam.coarse.shape == (8, 8) and cam.heatmap.shape == (299, 299)
    assert float(cam.heatmap.max()) <= 1.0 and not torch.isnan(cam.heatmap).any()


def test_grad_cam_rejects_bad_arguments(zoo):
    model = zoo["googlenet"]
    x = image(SIZES["googlenet"])
    with pytest.raises(ValueError, match="class_index must be in 0..999"):
        grad_cam(model, x, 1000)
    with pytest.raises(ValueError, match="class_index"):
        grad_cam(model, x, 2.5)
    with pytest.raises(ValueError, match="unknown block"):
        grad_cam(model, x, block="inception_9.nope")
    with pytest.raises(TypeError, match="InceptionNet"):
        grad_cam(nn.Linear(3, 3), x)


# ---------------------------------------------------------------------------- the shared model


def test_model_left_unchanged_and_repeatable(zoo):
    model = zoo["inception_resnet_v1"]  # residual blocks, in-place ReLUs, a BN in the head
    x = image(75, seed=3)
    before = snapshot(model)
    first = (feature_maps(model, x, channels=3), grad_cam(model, x),
             grad_cam(model, x, 3, block="inception_resnet_b.1"))
    assert_unchanged(model, before)
    second = (feature_maps(model, x, channels=3), grad_cam(model, x),
              grad_cam(model, x, 3, block="inception_resnet_b.1"))
    assert_unchanged(model, before)
    for a, b in zip(first[0], second[0]):
        assert a.top_channels == b.top_channels and torch.equal(a.maps, b.maps)
    for a, b in zip(first[1:], second[1:]):
        assert a.class_index == b.class_index
        assert torch.equal(a.heatmap, b.heatmap) and torch.equal(a.coarse, b.coarse)


def test_frozen_parameters_give_the_same_cam(zoo):
    model = zoo["googlenet"]
    x = image(SIZES["googlenet"], seed=4)
    expected = grad_cam(model, x, 5, block="inception_4.inception_4a")
    frozen = copy.deepcopy(model)
    for p in frozen.parameters():
        p.requires_grad_(False)
    before = snapshot(frozen)
    cam = grad_cam(frozen, x, 5, block="inception_4.inception_4a")
    assert_unchanged(frozen, before)
    assert all(not p.requires_grad for p in frozen.parameters())
    # the same model, input and kernels; frozen parameters only skip their own gradients
    torch.testing.assert_close(cam.heatmap, expected.heatmap, atol=ulps(1.0, 8), rtol=0)


def test_works_under_no_grad_and_inference_mode(zoo):
    model = zoo["googlenet"]
    x = image(SIZES["googlenet"], seed=5)
    expected = grad_cam(model, x)
    with torch.no_grad():
        assert torch.equal(grad_cam(model, x).heatmap, expected.heatmap)
    with torch.inference_mode():
        y = x.clone()  # an inference tensor
        cam = grad_cam(model, y)
        maps = feature_maps(model, y, blocks=["inception_3.inception_3a"])
    assert torch.equal(cam.heatmap, expected.heatmap)
    assert maps[0].name == "inception_3.inception_3a"


def test_refuses_training_mode(zoo):
    model = copy.deepcopy(zoo["googlenet"]).train()
    x = image(SIZES["googlenet"])
    with pytest.raises(ValueError, match=r"training mode.*model\.eval\(\) first"):
        grad_cam(model, x)
    with pytest.raises(ValueError, match=r"model\.eval\(\) first"):
        feature_maps(model, x)
    assert model.training  # refused, not switched
    model.eval()
    model.inception_4.train()  # one stage left in training mode is refused too
    with pytest.raises(ValueError, match="inception_4"):
        grad_cam(model, x)


def tiny_net(zero_fc: bool) -> InceptionNet:
    torch.manual_seed(0)
    stages = {"stem": stage("stem", {"conv": conv(4, 3, padding=1)}, "stem"),
              "body": stage("body", {"conv": conv(6, 3, 2, 1)}, "inception")}
    net = materialize(network(stages, classifier_head(3, 0.0))).eval()
    if zero_fc:
        with torch.no_grad():
            net.head.fc.weight.zero_()
    return net


def test_all_zero_cam_is_zeros_not_nan():
    net = tiny_net(zero_fc=True)  # the logits do not depend on the features: zero gradient
    cam = grad_cam(net, torch.randn(3, 10, 10))
    assert cam.coarse.shape == (5, 5) and cam.heatmap.shape == (10, 10)
    assert torch.equal(cam.heatmap, torch.zeros(10, 10))
    assert torch.equal(cam.coarse, torch.zeros(5, 5))
    # a constant feature map normalises to zeros as well
    maps = feature_maps(tiny_net(False), torch.zeros(1, 3, 10, 10), channels=2)
    assert all(not torch.isnan(b.maps).any() for b in maps)


def test_input_follows_the_models_dtype():
    net = tiny_net(False).double()  # a float64 model given a float32 image
    x = torch.rand(1, 3, 10, 10)
    cam = grad_cam(net, x)
    maps = feature_maps(net, x)
    assert cam.heatmap.dtype == maps[0].maps.dtype == torch.float32
    assert next(net.parameters()).dtype == torch.float64


# ---------------------------------------------------------------------------- pictures


def test_overlay():
    rng = np.random.default_rng(0)
    picture = Image.fromarray(rng.integers(0, 256, (80, 120, 3), dtype=np.uint8))
    heat = torch.rand(7, 5)
    out = overlay(picture, heat)
    assert out.mode == "RGB" and out.size == picture.size
    assert np.array_equal(np.asarray(overlay(picture, heat, alpha=0.0)), np.asarray(picture))
    full = np.asarray(overlay(picture, torch.ones(3, 3), alpha=1.0))
    assert (full == COLORMAPS["inferno"][-1].astype(np.uint8)).all()
    grey = overlay(picture.convert("L"), heat, cmap="viridis")
    assert grey.mode == "RGB" and grey.size == (120, 80)
    with pytest.raises(ValueError, match="alpha"):
        overlay(picture, heat, alpha=1.5)
    with pytest.raises(ValueError, match="colormap"):
        overlay(picture, heat, cmap="jet")


def test_colorize_is_a_perceptual_ramp():
    for name, table in COLORMAPS.items():
        rgb = colorize(np.linspace(0, 1, 256), cmap=name)
        assert np.array_equal(colorize(torch.linspace(0, 1, 256), cmap=name), rgb)
        assert rgb.shape == (256, 3) and rgb.dtype == np.uint8
        assert (rgb[0] == table[0]).all() and (rgb[-1] == table[-1]).all()
        luma = rgb.astype(float) @ np.array([0.299, 0.587, 0.114])
        assert np.all(np.diff(luma) >= -0.6)  # brightness never goes back down
    assert colorize(torch.tensor([[float("nan"), 2.0]])).shape == (1, 2, 3)


@pytest.mark.parametrize("k, columns, pad, shape", [
    (16, 8, 1, (2 * 5 + 1, 8 * 7 + 7)),
    (5, 8, 1, (5, 5 * 7 + 4)),
    (10, 4, 2, (3 * 5 + 2 * 2, 4 * 7 + 3 * 2)),
    (1, 8, 0, (5, 7)),
])
def test_channel_grid_shape(k, columns, pad, shape):
    maps = torch.rand(k, 5, 7)
    grid = channel_grid(maps, columns=columns, pad=pad)
    assert grid.shape == shape and grid.dtype == np.uint8
    cols = min(columns, k)
    last = k - 1
    r, c = divmod(last, cols)
    tile = grid[r * (5 + pad):r * (5 + pad) + 5, c * (7 + pad):c * (7 + pad) + 7]
    assert np.array_equal(tile, np.rint(maps[last].numpy() * 255).astype(np.uint8))


def test_channel_grid_of_feature_maps(zoo):
    maps = feature_maps(zoo["googlenet"], image(96), channels=16,
                        blocks=["inception_3.inception_3a"])[0].maps
    assert maps.shape == (16, 12, 12)
    assert channel_grid(maps).shape == (2 * 12 + 1, 8 * 12 + 7)
