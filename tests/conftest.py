"""Shared fixtures for the model-zoo tests: reference models with random weights, saved once.

The reference networks (torchvision, timm) are built with random weights, their batch norms
given random affine parameters and data-derived running statistics (see
``randomize_batchnorm``), saved as plain state dicts, and run once on a fixed random batch.
Everything is built lazily and at most once per test session.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

# The inference copies' default engine ("auto") exports a float32 model to ONNX in the background
# and keeps the file in the user's cache: minutes of CPU per big network, outside tmp paths. The
# suite (and the app servers it starts, which inherit the environment) runs PyTorch;
# tests/test_ort_engine.py tests the other engines explicitly, with its cache under tmp.
os.environ["INCEPTION_EXPLORER_ENGINE"] = "torch"


def randomize_batchnorm(model: nn.Module, input_size: int, seed: int = 0, batch: int = 2) -> nn.Module:
    """Give every batch norm of ``model`` random-looking, non-default parameters and statistics.

    Default-initialised BNs (weight 1, bias 0, mean 0, var 1) would hide a checkpoint loader
    that swaps or drops them. Setting the running stats to arbitrary values instead makes
    activations blow up or vanish through ~100 layers (the logits end up either astronomically
    large or dominated by the fc bias), which would make a 1e-4 comparison meaningless. So:
    random affine parameters first, then running statistics measured on a random batch (each BN
    then normalises its real inputs, and the logits stay of order one), then a small random
    perturbation of those statistics. Returns the model in eval mode.
    """
    gen = torch.Generator().manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    with torch.no_grad():
        for bn in norms:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average: one batch sets the statistics exactly
            if bn.affine:
                bn.weight.copy_(torch.rand(bn.num_features, generator=gen) + 0.5)
                bn.bias.copy_(torch.randn(bn.num_features, generator=gen) * 0.2)
        model.train()
        model(torch.randn(batch, 3, input_size, input_size, generator=gen))
        for bn, momentum in zip(norms, momenta):
            bn.momentum = momentum
            bn.running_var.mul_(torch.rand(bn.num_features, generator=gen) * 0.2 + 0.9)
            bn.running_mean.add_(torch.randn(bn.num_features, generator=gen) * 0.05
                                 * bn.running_var.sqrt())
    return model.eval()


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _torchvision_googlenet():
    import torchvision
    return torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False,
                                        transform_input=False)


def _torchvision_inception_v3():
    import torchvision
    return torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False,
                                           transform_input=False)


def _torchvision(name: str) -> Callable[[], nn.Module]:
    def make():
        import torchvision
        return getattr(torchvision.models, name)(weights=None)
    return make


def _timm(name: str) -> Callable[[], nn.Module]:
    def make():
        import timm
        return timm.create_model(name, pretrained=False)
    return make


@dataclass(frozen=True)
class RefSpec:
    variant: str        # the explorer variant the checkpoint is for
    make: Callable[[], nn.Module]
    input_size: int     # of the test batch (and of the batch that calibrates the BN statistics)
    has_aux: bool       # the checkpoint carries auxiliary-head weights
    seed: int


# The two big timm networks are compared at 160x160 rather than 299x299 to keep the CPU cost
# low: the weights do not depend on the size, and small grids make padding conventions (e.g.
# average pools that exclude the padding) weigh more, not less.
REFERENCE_SPECS: dict[str, RefSpec] = {
    "torchvision_googlenet": RefSpec("googlenet", _torchvision_googlenet, 224, True, 1),
    "torchvision_inception_v3": RefSpec("inception_v3", _torchvision_inception_v3, 299, True, 2),
    "timm_inception_v3": RefSpec("inception_v3", _timm("inception_v3"), 299, False, 3),
    "timm_inception_v4": RefSpec("inception_v4", _timm("inception_v4"), 160, False, 4),
    "timm_inception_resnet_v2": RefSpec("inception_resnet_v2", _timm("inception_resnet_v2"), 160,
                                        False, 5),
    # the ResNets at 96 px (their weights do not depend on the size; a 3x3 last grid)
    **{f"torchvision_{v}": RefSpec(v, _torchvision(v), 96, False, 6 + i)
       for i, v in enumerate(("resnet50", "resnet101", "resnet152"))},
    **{f"timm_{v}": RefSpec(v, _timm(v), 96, False, 9 + i)
       for i, v in enumerate(("resnetv2_50", "resnetv2_101"))},
}


@dataclass
class Reference:
    name: str
    spec: RefSpec
    model: nn.Module          # eval mode; treat as read-only (deep-copy before train mode)
    path: Path                # its state_dict, saved with torch.save
    x: torch.Tensor           # a fixed random batch of 2 at spec.input_size
    logits: torch.Tensor      # model(x) in eval mode

    def state_dict(self) -> dict[str, torch.Tensor]:
        """A fresh copy of the saved tensors (safe to edit)."""
        return {k: v.clone() for k, v in self.model.state_dict().items()}

    def train_copy(self) -> nn.Module:
        return copy.deepcopy(self.model).train()


class ReferenceZoo:
    """Builds each reference once, on first use, and keeps its checkpoint in ``root``."""

    def __init__(self, root: Path):
        self.root = root
        self._cache: dict[str, Reference] = {}

    def __getitem__(self, name: str) -> Reference:
        if name not in self._cache:
            spec = REFERENCE_SPECS[name]
            torch.manual_seed(spec.seed)  # the reference's own (global-RNG) initialisation
            model = randomize_batchnorm(spec.make(), spec.input_size, seed=spec.seed)
            path = self.root / f"{name}.pth"
            torch.save(model.state_dict(), path)
            gen = torch.Generator().manual_seed(1000 + spec.seed)
            x = torch.randn(2, 3, spec.input_size, spec.input_size, generator=gen)
            with torch.no_grad():
                logits = model(x)
            self._cache[name] = Reference(name, spec, model, path, x, logits)
        return self._cache[name]


# -- a test run writes only under temporary folders -------------------------------------------------

_HYPOTHESIS_HOME: Path | None = None


def pytest_configure(config):
    """Hypothesis keeps its example database in ./.hypothesis by default: in a temporary folder
    instead, so that a test run leaves the checkout as it found it."""
    global _HYPOTHESIS_HOME
    import tempfile

    from hypothesis.configuration import set_hypothesis_home_dir
    _HYPOTHESIS_HOME = Path(tempfile.mkdtemp(prefix="inception-explorer-hypothesis-"))
    set_hypothesis_home_dir(_HYPOTHESIS_HOME)


def pytest_unconfigure(config):
    import shutil
    if _HYPOTHESIS_HOME is not None:
        shutil.rmtree(_HYPOTHESIS_HOME, ignore_errors=True)


# -- markers: `browser` and `gpu` (registered in pyproject.toml) ---------------------------------

BROWSER_FIXTURES = {"browser", "lab_tab"}  # fixtures that start Chromium


def pytest_collection_modifyitems(config, items):
    """A `gpu` test is skipped where torch sees no CUDA device (it still runs, and must pass, on a
    machine with one: benchmarks/gpu.sh). A test that asks for Chromium without the `browser`
    marker is a mistake that would slow the quick run (`-m "not browser and not gpu"`): refuse it."""
    unmarked = [item.nodeid for item in items
                if BROWSER_FIXTURES & set(getattr(item, "fixturenames", ()))
                and item.get_closest_marker("browser") is None]
    if unmarked:
        raise pytest.UsageError(f"mark these @pytest.mark.browser (they start Chromium): {unmarked}")
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in items:
            if item.get_closest_marker("gpu") is not None:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def reference_zoo(tmp_path_factory) -> ReferenceZoo:
    """Reference models with random weights and their saved checkpoints, built once a session."""
    return ReferenceZoo(tmp_path_factory.mktemp("reference_checkpoints"))


@pytest.fixture(scope="session", name="randomize_batchnorm")
def randomize_batchnorm_fixture():
    """``randomize_batchnorm(model, input_size, seed=0)`` (see above), for tests that build
    their own models."""
    return randomize_batchnorm


@pytest.fixture(scope="session")
def meta_forward_shapes():
    """``shapes(model, size, paths)``: each named submodule's output shape (without the batch
    axis) on a (2, 3, size, size) meta batch, through forward hooks."""

    def shapes(model: nn.Module, size: int, paths) -> dict[str, tuple]:
        seen, handles = {}, []
        for path in paths:
            module = model.get_submodule(path)
            handles.append(module.register_forward_hook(
                lambda _m, _i, out, path=path: seen.__setitem__(path, tuple(out.shape[1:]))))
        try:
            with torch.no_grad():
                model(torch.empty(2, 3, size, size, device="meta"))
        finally:
            for handle in handles:
                handle.remove()
        return seen

    return shapes


@pytest.fixture(scope="module")
def one_thread():
    """Small tensors: torch's thread pool only adds overhead (x10 on a busy 2-core machine).
    A module asks for it with an autouse fixture of its own."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def weights_dir(reference_zoo, tmp_path_factory):
    """Checkpoints with random weights under the registry's names, in the local weights folder
    an offline server reads ($INCEPTION_EXPLORER_WEIGHTS): no download is possible here."""
    import shutil
    folder = tmp_path_factory.mktemp("weights")
    shutil.copy(reference_zoo["torchvision_googlenet"].path, folder / "googlenet.IMAGENET1K_V1.pth")
    shutil.copy(reference_zoo["torchvision_inception_v3"].path,
                folder / "inception_v3.IMAGENET1K_V1.pth")
    return folder


# -- the app in a browser: one server and one Chromium per test module ------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory, weights_dir):
    """The app on a free port, reading the tests' weights folder; a module that needs another
    environment (memory limits, a cache folder) defines its own ``server``."""
    from serving import streamlit_server
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    with streamlit_server(log, {"INCEPTION_EXPLORER_WEIGHTS": str(weights_dir)}) as (url, _):
        yield url


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for the module; fails (never skips) without Playwright or Chromium."""
    from serving import launch_chromium
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        pytest.fail(f"playwright is needed for the browser tests: {err}")
    with sync_playwright() as p:
        chromium = launch_chromium(p)
        yield chromium
        chromium.close()
