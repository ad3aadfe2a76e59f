"""GPU builds: same network, same weights, same logits as on the CPU (where CUDA exists); and a
clear error where it does not, checked on every machine (with CUDA hidden where there is one)."""

import warnings

import pytest
import torch
from tolerances import LOGIT_ATOL

import explorer

cuda = pytest.mark.gpu  # skipped where torch finds no CUDA device (tests/conftest.py)

# checkpoints with calibrated batch norms (conftest), so that logits are of order one and a
# 1e-4 comparison means something
ZOO = {"googlenet": "torchvision_googlenet", "inception_v3": "torchvision_inception_v3",
       "inception_resnet_v2": "timm_inception_resnet_v2"}


@pytest.fixture
def float32_on_gpu():
    """TF32 (on by default for cuDNN convolutions) keeps 10 mantissa bits: compare float32."""
    conv, matmul = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = conv, matmul


@cuda
@pytest.mark.parametrize("variant", list(ZOO))
def test_cuda_build_matches_cpu(variant, reference_zoo, float32_on_gpu):
    ref = reference_zoo[ZOO[variant]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "dropped the auxiliary-head tensors": expected here
        cpu = explorer.build(variant, weights=ref.path)
        gpu = explorer.build(variant, device="cuda", weights=ref.path)
    assert {p.device.type for p in gpu.parameters()} == {"cuda"}
    with torch.no_grad():
        expected, got = cpu(ref.x), gpu(ref.x.cuda()).cpu()
    assert (expected[0] - expected[1]).abs().max() > 1000 * LOGIT_ATOL  # not a vacuous check
    # float32 on both sides: the same contract as against the reference models (tolerances.py)
    torch.testing.assert_close(got, expected, atol=LOGIT_ATOL, rtol=0)


def test_cuda_request_without_a_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(explorer.ConfigError, match="no CUDA GPU is available"):
        explorer.build("googlenet", device="cuda")
