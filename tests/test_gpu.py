"""GPU builds: same network, same weights, same logits as on the CPU (runs where CUDA exists)."""

import pytest
import torch

import explorer

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
@pytest.mark.parametrize("variant", ["googlenet", "inception_v3", "inception_resnet_v2"])
def test_cuda_build_matches_cpu(variant, tmp_path):
    cpu = explorer.build(variant)
    path = tmp_path / "w.pth"
    torch.save(cpu.state_dict(), path)
    gpu = explorer.build(variant, device="cuda", weights=path)
    assert next(gpu.parameters()).device.type == "cuda"
    size = explorer.VARIANTS[variant].native_input_size
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        assert torch.allclose(gpu(x.cuda()).cpu(), cpu(x), atol=1e-3)


def test_cuda_request_without_a_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        assert explorer.build("googlenet", device="cuda", width=0.25) is not None
    else:
        with pytest.raises(explorer.ConfigError, match="no CUDA GPU is available"):
            explorer.build("googlenet", device="cuda")
