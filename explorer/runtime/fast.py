"""Faster inference: an optimised copy of a model, for predictions only.

``for_inference(model, dtype=None)`` returns a copy (the model given, which the app's sessions
share, is never changed) with

- every BatchNorm that follows a convolution folded into it: in eval mode BN is the affine map
  y = g (x - m) / sqrt(v + eps) + b per channel, so the conv's weights become
  w * g / sqrt(v + eps) and its bias (b_conv - m) * g / sqrt(v + eps) + b; one pass over the
  activations fewer per layer. A BN that does not follow a conv (the facenet embedding's
  BatchNorm1d, the fc_bn of Inception-v3's BN-auxiliary head) or that uses batch statistics is left as it is;
- each Inception-ResNet block's residual scale folded into its linear 1x1 "up" conv, and the add
  done in place (one pass instead of a multiply and an add); a pre-activation ResNet's BN -> ReLU
  folded into the conv before it (the ReLU stays);
- channels-last memory (NHWC): oneDNN's convolutions run without reordering their input on every
  layer (a trial on this 2-core CPU, Inception-ResNet-v2, batch 1, folded: 0.76 of timm's time
  channels-last, 0.95 contiguous; benchmarks/inference.py times the result). GPUs get it too
  (cuDNN's tensor-core kernels prefer NHWC);
- ``torch.inference_mode`` around every call;
- optionally bfloat16 (CPUs with native bf16 such as AVX-512 BF16 or AMX, and GPUs) or float16
  (GPUs) arithmetic, while it takes and returns float32 tensors;
- on a GPU, the whole forward pass recorded once per input shape as a CUDA graph and replayed:
  at batch 1 to 16 these networks are a few hundred small kernels whose launches from Python
  cost more than the GPU's arithmetic (on an H200, GoogLeNet took ~4 ms eagerly in any precision,
  ~0.1 ms of it compute). A graph holds the activations of one forward pass at its shape in its
  own memory pool; the last ``GRAPH_SHAPES`` shapes are kept;
- in float32 on a CPU, ONNX Runtime as the engine when it is installed (``engine="auto"``, the
  default; explorer/runtime/ort_engine.py): 1.3-1.9x faster than PyTorch's eager float32 here.
  Its one slow step, the export, runs once per weights and input size, in the background while
  PyTorch answers (``"auto"``) or at once (``"onnxruntime"``), and is kept on disk.
  ``engine="torch"`` (or $INCEPTION_EXPLORER_ENGINE=torch) keeps PyTorch. bfloat16 stays on
  PyTorch: oneDNN's AVX-512 BF16 / AMX kernels are ahead of both.

Gradients, hooks and training need the plain model (Grad-CAM, feature maps): the copy refuses
``train()``.
"""

from __future__ import annotations

import copy
import threading
import warnings
from collections import OrderedDict

import torch
from torch import nn
from torch.utils._pytree import tree_map

from explorer.core.i18n import _
from explorer.runtime import ort_engine
from explorer.runtime.modules import BNAct, ConvBN, Residual
from explorer.variants import ConfigError

PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
GRAPH_SHAPES = 4  # CUDA graphs kept per inference copy (one per input shape, dtype, TF32 mode)


def precision_name(dtype) -> str:
    """"float32", "bfloat16" or "float16" for a dtype or one of those names (None: float32);
    ConfigError for anything else."""
    if dtype is None:
        return "float32"
    for name, value in PRECISIONS.items():
        if dtype == value or dtype == name:
            return name
    raise ConfigError(_("precision must be one of {precisions}, got {got}").format(
        precisions=", ".join(PRECISIONS), got=repr(dtype)))


def unsupported(dtype, device="cpu") -> str | None:
    """Why ``dtype`` cannot run on ``device`` here (None when it can), in the run's language."""
    name, kind = precision_name(dtype), torch.device(device).type
    if name == "float32":
        return None
    if kind == "cuda":
        if name == "bfloat16" and not torch.cuda.is_bf16_supported():
            return _("this GPU has no bfloat16 arithmetic")
        return None
    if kind != "cpu":
        return _("{precision} inference runs on a CPU or a CUDA GPU, not on {device}").format(
            precision=name, device=kind)
    if name == "float16":
        return _("for GPUs only (a CPU emulates float16, slower than float32)")
    if not cpu_has_bf16():
        return _("this CPU has no native bfloat16 (AVX-512 BF16 or AMX): emulated, it would be "
                 "slower than float32")
    return None


def cpu_has_bf16() -> bool:
    """oneDNN's own test for native bfloat16 (AVX-512 BF16 / AMX) on this CPU."""
    try:
        return bool(torch.backends.mkldnn.is_available()
                    and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def supported_precisions(device="cpu") -> list[str]:
    return [name for name in PRECISIONS if unsupported(name, device) is None]


class InferenceModel(nn.Module):
    """The optimised network: float32 in, float32 out, ``inference_mode`` inside."""

    def __init__(self, model: nn.Module, dtype: torch.dtype, memory_format: torch.memory_format,
                 cuda_graphs: bool = False, engine: str = "torch"):
        super().__init__()
        self.model = model
        self.engine = engine  # "torch", "onnxruntime" (sessions made at once) or "auto" (background)
        # not a submodule: the sessions hold their own copy of the weights
        self.ort = ort_engine.OrtEngine(model) if engine != "torch" else None
        self.dtype = dtype
        self.memory_format = memory_format
        self.cuda_graphs = cuda_graphs
        self._graphs: OrderedDict[tuple, tuple] = OrderedDict()
        # one replay at a time: a graph reads and writes fixed buffers, and the app's sessions
        # share this copy
        self._graph_lock = threading.Lock()
        # what the rest of the code reads from a built model (config, checkpoint_format, ...)
        for name in ("config", "checkpoint_format", "weights_notes"):
            if hasattr(model, name):
                setattr(self, name, getattr(model, name))

    def _eager(self, x: torch.Tensor):
        out = self.model(x.to(self.dtype).contiguous(memory_format=self.memory_format))
        return tree_map(lambda t: t.float() if isinstance(t, torch.Tensor) else t, out)

    def forward(self, x: torch.Tensor):
        with torch.inference_mode():
            if self.cuda_graphs and x.is_cuda:
                return self._replay(x)
            session = self._session(x)
            if session is not None:
                return session(x)
            return self._eager(x)

    def _session(self, x: torch.Tensor):
        if self.ort is None or x.device.type != "cpu" or x.dim() != 4 or x.dtype != torch.float32:
            return None
        session = self.ort.session(x)
        if session is None:
            height, width = x.shape[-2:]
            if self.engine == "onnxruntime":
                session = self.ort.prepare(height, width)
            else:  # auto: PyTorch answers while the export runs, once
                self.ort.start(height, width)
        return session

    def prepare(self, height: int, width: int) -> str:
        """Make the ONNX Runtime session for ``height`` x ``width`` inputs now (export it unless it
        is cached), so that no later call waits; returns the engine those inputs will run on."""
        if self.ort is None:
            return "torch"
        self.ort.prepare(height, width)
        return "onnxruntime"

    def engine_for(self, height: int, width: int) -> str:
        """What runs ``height`` x ``width`` inputs right now: "onnxruntime" or "torch"."""
        ready = self.ort is not None and (height, width) in self.ort.sessions
        return "onnxruntime" if ready else "torch"

    def _replay(self, x: torch.Tensor):
        # a graph keeps the kernels chosen when it was recorded: TF32 on or off is part of them
        key = (tuple(x.shape), x.dtype, x.device, torch.backends.cudnn.allow_tf32,
               torch.backends.cuda.matmul.allow_tf32)
        with self._graph_lock:
            if key not in self._graphs:
                try:
                    self._graphs[key] = self._capture(x)
                except RuntimeError as err:  # an op that cannot be captured: run eagerly
                    warnings.warn(f"CUDA graph capture failed, running eagerly: {err}",
                                  stacklevel=3)
                    self.cuda_graphs = False
                    return self._eager(x)
                while len(self._graphs) > GRAPH_SHAPES:
                    self._graphs.popitem(last=False)  # its memory pool goes with it
            self._graphs.move_to_end(key)
            graph, static_in, static_out = self._graphs[key]
            static_in.copy_(x)
            graph.replay()
            # the graph's outputs are overwritten by the next replay: the caller gets copies
            return tree_map(lambda t: t.clone() if isinstance(t, torch.Tensor) else t, static_out)

    def _capture(self, x: torch.Tensor) -> tuple:
        static_in = torch.empty_like(x)
        static_in.copy_(x)
        side = torch.cuda.Stream(x.device)
        side.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(side):  # warm-up off the capture: cuDNN chooses its kernels
            for _ in range(2):
                self._eager(static_in)
        torch.cuda.current_stream(x.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # thread_local: other sessions may use the GPU (Grad-CAM on the plain model) meanwhile
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            static_out = self._eager(static_in)
        return graph, static_in, static_out

    def train(self, mode: bool = True):
        if mode:
            raise RuntimeError("an inference copy (explorer.for_inference) cannot be trained: "
                               "train the plain model")
        return super().train(False)

    def extra_repr(self) -> str:
        return (f"dtype={precision_name(self.dtype)}, memory_format={self.memory_format}, "
                f"cuda_graphs={self.cuda_graphs}, engine={self.engine}")


def resolve_engine(engine, precision: str, device) -> str:
    """The engine an inference copy uses: "torch" or, for float32 on a CPU, "onnxruntime" /
    "auto" (None: $INCEPTION_EXPLORER_ENGINE, else "auto"). ConfigError for an unknown name, or
    for "onnxruntime" where it cannot run."""
    engine = ort_engine.default_engine() if engine is None else engine
    if engine not in ort_engine.ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ort_engine.ENGINES)}, got {engine!r}")
    if engine == "torch":
        return engine
    why = (f"ONNX Runtime runs float32 only here, not {precision}" if precision != "float32"
           else f"ONNX Runtime runs on the CPU here, not on {torch.device(device).type}"
           if torch.device(device).type != "cpu" else ort_engine.available())
    if why is None:
        return engine
    if engine == "onnxruntime":
        raise ConfigError(f"engine 'onnxruntime': {why}; use engine='torch' or 'auto'")
    return "torch"


def for_inference(model: nn.Module, dtype=None, *, memory_format=torch.channels_last,
                  cuda_graphs: bool = True, engine: str | None = None) -> InferenceModel:
    """An optimised copy of ``model`` for predictions (see the module's docstring).

    ``dtype``: None or torch.float32 (the same logits within float32 rounding),
    torch.bfloat16 (CPUs with native bf16, GPUs) or torch.float16 (GPUs); the names
    "float32", "bfloat16", "float16" work too. ConfigError for another dtype, or for one this
    device cannot run natively. ``cuda_graphs``: replay each input shape's forward pass as a
    CUDA graph (GPU models only; ignored on a CPU). ``engine``: "auto" (the default, or
    $INCEPTION_EXPLORER_ENGINE): ONNX Runtime for float32 on a CPU when installed, prepared in the
    background while PyTorch answers; "onnxruntime": the same, prepared before the first answer
    (ConfigError where it cannot run); "torch": PyTorch only."""
    name = precision_name(dtype)
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    if device.type == "meta":
        raise ConfigError(_("for_inference needs a model with weights, not one on the meta "
                            "device"))
    reason = unsupported(name, device)
    if reason:
        raise ConfigError(_("{precision} inference on {device}: {reason}").format(
            precision=name, device=device.type.upper(), reason=reason))
    engine = resolve_engine(engine, name, device)
    fast = copy.deepcopy(model).eval().requires_grad_(False)
    with torch.no_grad():
        fold_batchnorm(fast)
        fold_residual_scales(fast)
    fast = fast.to(dtype=PRECISIONS[name], memory_format=memory_format)
    return InferenceModel(fast, PRECISIONS[name], memory_format,
                          cuda_graphs=cuda_graphs and device.type == "cuda", engine=engine).eval()


# -- folding ---------------------------------------------------------------------------------------

def _foldable(conv, bn) -> bool:
    return (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
            and bn.track_running_stats and bn.running_mean is not None
            and bn.num_features == conv.out_channels)


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Make ``conv`` compute conv followed by ``bn`` in eval mode (in place, float64 maths)."""
    var, mean = bn.running_var.double(), bn.running_mean.double()
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(var)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(var)
    scale = gamma / torch.sqrt(var + bn.eps)
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(var)
    dtype = conv.weight.dtype
    conv.weight = nn.Parameter((conv.weight.double() * scale.view(-1, 1, 1, 1)).to(dtype),
                               requires_grad=False)
    conv.bias = nn.Parameter(((bias - mean) * scale + beta).to(dtype), requires_grad=False)


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every BatchNorm2d that directly follows a Conv2d (in a ConvBN, or next to it in an
    ``nn.Sequential``) into the conv; returns how many were folded."""
    folded = 0
    for module in list(model.modules()):
        if isinstance(module, ConvBN) and _foldable(module.conv, module.bn):
            fold_conv_bn(module.conv, module.bn)
            module.bn = None  # ConvBN.forward skips a missing BN
            folded += 1
        elif isinstance(module, nn.Sequential):
            names = list(module._modules)
            for first, second in zip(names, names[1:]):
                conv, bn = module._modules[first], module._modules[second]
                if isinstance(conv, ConvBN) and conv.bn is None and conv.act is None:
                    conv = conv.conv  # a pre-activation ResNet's plain conv, then BN -> ReLU
                if _foldable(conv, bn):
                    fold_conv_bn(conv, bn)
                    act = isinstance(bn, BNAct) and bn.act
                    module._modules[second] = nn.ReLU(inplace=True) if act else nn.Identity()
                    folded += 1
    return folded


def fold_residual_scales(model: nn.Module) -> int:
    """Scale each Residual's linear ``up`` conv by the block's scale (the block then adds
    without a multiply, in place); returns how many blocks were changed."""
    changed = 0
    for module in model.modules():
        if isinstance(module, Residual) and module.up is not None and module.scale != 1.0:
            module.up.weight.mul_(module.scale)
            if module.up.bias is not None:
                module.up.bias.mul_(module.scale)
            module.scale = 1.0
            changed += 1
    return changed


# -- what lower precision changes ------------------------------------------------------------------

def agreement(reference: torch.Tensor, other: torch.Tensor) -> dict:
    """How far ``other``'s logits (lower precision) are from ``reference``'s (float32), per
    image: the share with the same top-1 class, and the largest change of any class's softmax
    probability."""
    p, q = torch.softmax(reference.float(), 1), torch.softmax(other.float(), 1)
    same = (p.argmax(1) == q.argmax(1)).float()
    return {"images": int(p.shape[0]), "top1_agreement": float(same.mean()),
            "max_prob_change": float((p - q).abs().max()),
            "max_logit_change": float((reference.float() - other.float()).abs().max())}


# -- for loaded models (the Predict page, the predict command) -------------------------------------

def copy_bytes(model: nn.Module, dtype=None) -> int:
    """The weights an inference copy of ``model`` holds (at most: folding drops the BNs)."""
    size = PRECISIONS[precision_name(dtype)].itemsize
    return sum(t.numel() * (size if t.is_floating_point() else t.element_size())
               for t in (*model.parameters(), *model.buffers()))


def guard_copy(loaded, dtype=None, *, max_memory=None, reserved: int = 0):
    """MemoryRefused unless an inference copy of ``loaded`` (a LoadedModel) fits the budget; the
    copy's weights come on top of the model it is made from (``reserved``: bytes the budget does
    not know of yet, such as a model that no cache holds)."""
    from explorer.runtime.memory import Estimate, check
    name = precision_name(dtype)
    weights = copy_bytes(loaded.model, name)
    if resolve_engine(None, name, loaded.device) != "torch":
        weights *= 2  # ONNX Runtime's session holds its own copy of the weights
    need = Estimate(_("a {precision} inference copy of {variant}").format(
        precision=name, variant=loaded.variant), str(loaded.device), weights, 0, 0)
    return check(need, max_memory=max_memory, reserved=reserved,
                 advice=_("choose a smaller network or fewer networks, or ask the server's "
                          "operator for a larger budget"))


def inference_copy(loaded, dtype=None):
    """``loaded`` (a LoadedModel) with its model replaced by ``for_inference(model, dtype)``:
    classify() and predict() run it as they run the plain one. The plain model is untouched
    (Grad-CAM and feature maps need it)."""
    import dataclasses
    return dataclasses.replace(loaded, model=for_inference(loaded.model, dtype),
                               notes=list(loaded.notes))
