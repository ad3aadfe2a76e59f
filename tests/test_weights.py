"""Checkpoints: torchvision / timm state dicts load onto our modules and give the reference
logits; our own layout round-trips; bad or unsafe files are refused with a useful WeightsError.

The reference models (random weights, randomised batch norms) are built once per session by the
``reference_zoo`` fixture in conftest.py.
"""

from __future__ import annotations

import os
import random
import shlex
import warnings

import pytest
import torch
from safetensors.torch import save_file
from tolerances import LOGIT_ATOL

import explorer
from explorer.weights.formats import WeightsError

ATOL = LOGIT_ATOL  # the contract: same weights, logits within 1e-4 (tests/tolerances.py)


def logits_of(model, x):
    with torch.no_grad():
        return model(x)


def assert_matches_reference(model, ref):
    assert not model.training
    out = logits_of(model, ref.x)
    assert out.shape == ref.logits.shape == (2, 1000)
    # the comparison means something only if the logits depend on the input well beyond ATOL
    assert (ref.logits[0] - ref.logits[1]).abs().max() > 1000 * ATOL
    torch.testing.assert_close(out, ref.logits, atol=ATOL, rtol=0)


def build_quietly(*args, **kwargs):
    """Build, failing on any warning (a clean checkpoint must load without notes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return explorer.build(*args, **kwargs)


# ---------------------------------------------------------------------------------------------
# Equivalence with the reference implementations


def test_torchvision_googlenet_without_aux_drops_aux_weights_with_a_warning(reference_zoo):
    ref = reference_zoo["torchvision_googlenet"]
    with pytest.warns(UserWarning, match=r"dropped 20 auxiliary-head tensors .*aux_logits=False"):
        model = explorer.build("googlenet", weights=ref.path)
    assert model.checkpoint_format == "torchvision"
    assert len(model.weights_notes) == 1
    assert not any(name.startswith("aux") for name, _ in model.named_children())
    assert_matches_reference(model, ref)


def _train_outputs_match(model, reference, x, heads: int):
    """Train mode (batch-statistics BN, dropout): same seed, same dropout masks, same outputs.
    Checks the aux heads' weights and the blocks they read from."""
    torch.manual_seed(123)
    ref_out = reference(x)
    torch.manual_seed(123)
    ours = model.train()(x)
    # torchvision: GoogLeNetOutputs(logits, aux_logits2, aux_logits1), InceptionOutputs(logits,
    # aux_logits); ours lists the aux logits in tap order
    ref_aux = [ref_out.aux_logits1, ref_out.aux_logits2] if heads == 2 else [ref_out.aux_logits]
    assert len(ours.aux_logits) == len(ref_aux) == heads
    torch.testing.assert_close(ours.logits, ref_out.logits, atol=ATOL, rtol=0)
    for mine, theirs in zip(ours.aux_logits, ref_aux):
        torch.testing.assert_close(mine, theirs, atol=ATOL, rtol=0)


def test_torchvision_googlenet_with_aux(reference_zoo):
    ref = reference_zoo["torchvision_googlenet"]
    model = build_quietly("googlenet", aux_logits=True, weights=ref.path)
    assert model.checkpoint_format == "torchvision" and model.weights_notes == []
    assert_matches_reference(model, ref)
    with torch.no_grad():
        _train_outputs_match(model, ref.train_copy(), ref.x, heads=2)


def test_torchvision_inception_v3_with_aux(reference_zoo):
    ref = reference_zoo["torchvision_inception_v3"]
    model = build_quietly("inception_v3", aux_logits=True, weights=ref.path)
    assert model.aux_taps == {"inception_b.mixed_6e": "aux"}  # torchvision taps Mixed_6e
    assert_matches_reference(model, ref)
    # the aux head on its own (eval mode: BN running statistics), on a random Mixed_6e output
    features = torch.randn(2, 768, 17, 17, generator=torch.Generator().manual_seed(0)).relu()
    with torch.no_grad():
        expected, got = ref.model.AuxLogits(features), model.aux(features)
    assert got.shape == (2, 1000)
    assert (expected[0] - expected[1]).abs().max() > 1000 * ATOL
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("name,source", [
    ("timm_inception_v3", ("timm", "torchvision")),  # the two share one naming
    ("timm_inception_v4", ("timm",)),
    ("timm_inception_resnet_v2", ("timm",)),
])
def test_timm_models(reference_zoo, name, source):
    ref = reference_zoo[name]
    model = build_quietly(ref.spec.variant, weights=ref.path)
    assert model.checkpoint_format in source
    assert_matches_reference(model, ref)


def test_torchvision_inception_v3_without_aux(reference_zoo):
    ref = reference_zoo["torchvision_inception_v3"]
    with pytest.warns(UserWarning, match="auxiliary-head tensors"):
        model = explorer.build("inception_v3", weights=ref.path)
    assert_matches_reference(model, ref)


def test_safetensors_checkpoint(reference_zoo, tmp_path):
    ref = reference_zoo["timm_inception_v4"]
    path = tmp_path / "inception_v4.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(path))
    model = build_quietly("inception_v4", weights=path)
    assert model.checkpoint_format == "timm"
    assert_matches_reference(model, ref)


@pytest.mark.parametrize("wrapping", ["state_dict", "module_prefix", "both"])
def test_wrapped_checkpoints(reference_zoo, tmp_path, wrapping):
    ref = reference_zoo["torchvision_googlenet"]
    state = ref.state_dict()
    if wrapping in ("module_prefix", "both"):  # as saved from nn.DataParallel
        state = {f"module.{k}": v for k, v in state.items()}
    if wrapping in ("state_dict", "both"):  # as saved by training scripts
        state = {"state_dict": state, "epoch": 90, "arch": "googlenet"}
    path = tmp_path / "googlenet.pth"
    torch.save(state, path)
    model = build_quietly("googlenet", aux_logits=True, weights=path)
    assert_matches_reference(model, ref)


@pytest.mark.parametrize("variant,layout,kwargs", [
    ("inception_resnet_v1", "released", {"width": 0.5}),
    ("bn_inception", "released", {}),
    ("googlenet", "paper", {"aux_logits": True}),
    ("inception_resnet_v2", "paper", {"width": 0.5, "repeats": (2, 1, 3)}),
])
def test_round_trip_in_our_own_layout(tmp_path, randomize_batchnorm, variant, layout, kwargs):
    torch.manual_seed(7)
    size = min(explorer.VARIANTS[variant].native_input_size, 224)
    original = randomize_batchnorm(explorer.build(variant, layout=layout, **kwargs), size, seed=7)
    path = tmp_path / "ours.pth"
    torch.save(original.state_dict(), path)
    loaded = build_quietly(variant, layout=layout, weights=path, **kwargs)
    assert loaded.checkpoint_format == "explorer"
    x = torch.randn(2, 3, size, size)
    expected, got = logits_of(original, x), logits_of(loaded, x)
    assert torch.equal(got, expected)
    assert not torch.allclose(expected[0], expected[1])
    for (name, a), (_, b) in zip(original.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name


# ---------------------------------------------------------------------------------------------
# Bad checkpoints


def test_wrong_variant_is_refused(reference_zoo):
    ref = reference_zoo["timm_inception_v4"]
    with pytest.raises(WeightsError, match=r"does not (fit|match) inception_v3") as err:
        explorer.build("inception_v3", weights=ref.path)
    assert "features.0" in str(err.value), "it shows the checkpoint's keys"


def test_wrong_variant_names_the_checkpoint_it_looks_like(reference_zoo):
    ref = reference_zoo["timm_inception_v4"]
    with pytest.raises(WeightsError) as err:
        explorer.build("inception_v3", weights=ref.path)
    assert "inception_v4" in str(err.value)


def test_released_weights_into_the_paper_layout_are_refused(reference_zoo):
    ref = reference_zoo["torchvision_googlenet"]
    with pytest.raises(WeightsError, match=r"googlenet \(paper layout"):
        explorer.build("googlenet", layout="paper", weights=ref.path)


def test_released_weights_into_the_paper_layout_name_their_layout(reference_zoo):
    ref = reference_zoo["torchvision_googlenet"]
    with pytest.raises(WeightsError) as err:
        explorer.build("googlenet", layout="paper", weights=ref.path)
    assert "googlenet (torchvision format)" in str(err.value)


def test_missing_keys_are_listed(reference_zoo, tmp_path):
    ref = reference_zoo["timm_inception_v4"]
    state = ref.state_dict()
    for key in ("features.21.branch3.1.conv.weight", "features.21.branch3.1.bn.running_var",
                "last_linear.bias"):
        del state[key]
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"3 missing") as err:
        explorer.build("inception_v4", weights=path)
    message = str(err.value)
    assert "inception_c.2.branches.pool.1.conv.weight" in message
    assert "head.fc.bias" in message
    assert "timm format" in message


def test_unexpected_keys_are_listed(reference_zoo, tmp_path):
    ref = reference_zoo["timm_inception_v4"]
    state = ref.state_dict()
    state["features.6.branch9.weight"] = torch.zeros(3)
    path = tmp_path / "extra.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"1 unexpected \(e.g. features.6.branch9.weight\)"):
        explorer.build("inception_v4", weights=path)


def test_num_classes_mismatch_suggests_the_right_one(reference_zoo):
    ref = reference_zoo["timm_inception_v4"]
    with pytest.raises(WeightsError, match="wrong shape") as err:
        explorer.build("inception_v4", num_classes=10, weights=ref.path)
    assert "num_classes=1000" in str(err.value)
    assert "head.fc.weight" in str(err.value)


def test_repeats_mismatch_is_refused(reference_zoo):
    ref = reference_zoo["timm_inception_v4"]
    with pytest.raises(WeightsError, match="inception_v4"):
        explorer.build("inception_v4", repeats=(1, 1, 1), weights=ref.path)


def test_aux_logits_with_a_checkpoint_without_aux(reference_zoo):
    ref = reference_zoo["timm_inception_v3"]
    with pytest.raises(WeightsError, match="missing") as err:
        explorer.build("inception_v3", aux_logits=True, weights=ref.path)
    assert "aux." in str(err.value)
    assert "aux_logits=False" in str(err.value)


def random_bytes(seed: int, n: int = 4096) -> bytes:
    return random.Random(seed).randbytes(n)


@pytest.mark.parametrize("content", [random_bytes(0), random_bytes(1), b"not a checkpoint\n" * 64],
                         ids=["random-0", "random-1", "text"])
def test_files_that_are_not_checkpoints_are_refused(tmp_path, content):
    path = tmp_path / "garbage.pth"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match="garbage.pth"):
        explorer.build("googlenet", weights=path)


@pytest.mark.parametrize("seed,error", [(2, "IndexError"), (20, "KeyError")])
def test_every_garbage_file_gives_a_weights_error(tmp_path, seed, error):
    path = tmp_path / "garbage.pth"
    path.write_bytes(random_bytes(seed))
    with pytest.raises(WeightsError, match="garbage.pth"):
        explorer.build("googlenet", weights=path)


def test_garbage_is_not_called_unsafe(tmp_path):
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"not a checkpoint\n" * 64)
    with pytest.raises(WeightsError) as err:
        explorer.build("googlenet", weights=path)
    assert "could run code" not in str(err.value)


def test_random_bytes_as_safetensors_are_refused(tmp_path):
    path = tmp_path / "random.safetensors"
    path.write_bytes(random_bytes(0))
    with pytest.raises(WeightsError, match="random.safetensors is not a readable safetensors"):
        explorer.build("googlenet", weights=path)


def test_truncated_checkpoint_is_refused(reference_zoo, tmp_path):
    data = reference_zoo["torchvision_googlenet"].path.read_bytes()
    path = tmp_path / "truncated.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated.pth is not a readable PyTorch checkpoint"):
        explorer.build("googlenet", weights=path)


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.pth"
    path.write_bytes(b"")
    with pytest.raises(WeightsError, match="empty.pth is not a readable PyTorch checkpoint"):
        explorer.build("googlenet", weights=path)


class _RunsCode:
    """Unpickling this calls a function of the attacker's choice (here: create a file)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(self.marker)}",))


@pytest.mark.parametrize("wrap", [False, True])
def test_pickle_that_would_run_code_is_refused_unrun(tmp_path, wrap):
    marker = tmp_path / "code_ran"
    payload = _RunsCode(str(marker))
    path = tmp_path / "evil.pth"
    # wrapped: a real-looking state_dict with one booby-trapped entry
    torch.save({"conv1.conv.weight": torch.zeros(64, 3, 7, 7), "extra": payload} if wrap
               else payload, path)
    with pytest.raises(WeightsError, match="evil.pth was refused.*could run code") as err:
        explorer.build("googlenet", weights=path)
    assert "state_dict" in str(err.value) and "safetensors" in str(err.value)
    assert not marker.exists(), "loading the checkpoint ran code"
    # the payload itself works: unpickling it without protection does create the marker
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_nonexistent_path_is_refused(tmp_path):
    path = tmp_path / "nope" / "weights.pth"
    with pytest.raises(WeightsError, match=r"no checkpoint file at .*weights.pth"):
        explorer.build("googlenet", weights=path)


def test_directory_is_refused(tmp_path):
    with pytest.raises(WeightsError, match="no checkpoint file"):
        explorer.build("googlenet", weights=tmp_path)


@pytest.mark.parametrize("content,message", [
    ([torch.zeros(1)], "holds no state_dict"),
    ({}, "holds no state_dict"),
    ({"epoch": 3, "name": "x"}, "holds no tensors"),
])
def test_files_without_a_state_dict_are_refused(tmp_path, content, message):
    path = tmp_path / "odd.pth"
    torch.save(content, path)
    with pytest.raises(WeightsError, match=message):
        explorer.build("googlenet", weights=path)


def test_weights_knows_no_variant():
    """The arrows run one way: explorer.variants imports explorer.weights.formats, never the reverse
    (a refused checkpoint is recognised among the variants the caller passes in)."""
    import subprocess
    import sys

    probe = ("import sys, explorer.weights.formats; "
             "print(any(m.startswith('explorer.variants') for m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
