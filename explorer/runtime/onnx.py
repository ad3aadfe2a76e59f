"""ONNX out: a built network as an ONNX file that a deployer runs with ONNX Runtime, checked.

``export_model(model, input_size)`` exports with ``torch.onnx.export(..., dynamo=True)`` (the
TorchScript exporter of torch 2.14 names nodes ``Identity_100``; the dynamo exporter records each
node's module path, which we turn into its name), then, before anything is written, runs the
file with ONNX Runtime on a random batch of ``CHECK_BATCH`` images (not the exported batch of 1:
that also proves the batch dimension is dynamic) and compares the outputs with PyTorch's. The
largest difference, over the outputs' scale (their largest magnitude, at least 1), above
``TOLERANCE`` refuses the export with ``ExportCheckFailed``. Why scaled: float32 keeps ~7
significant digits, and two engines that sum in other orders (oneDNN, ONNX Runtime's MLAS, which
also folds BN into the conv) differ in the last of them through ~100 layers; measured here on a
width-0.25 GoogLeNet with randomised BN statistics, logits up to 22: PyTorch vs float64 2.4e-4,
ONNX Runtime vs PyTorch 2.6e-4. For logits of order one (real weights) it is 1e-4 absolute.

The file says what it is: the opset (the model's ``opset_import`` and the ``opset`` metadata
entry), the variant, its build options, the input size and preprocessing, the weights, and the
check's figure, as ``metadata_props`` (Netron's "Metadata" panel). Node names carry the
qualified module names, e.g. ``inception_b.3.branches.7x7.1/Conv``, so Netron shows which
block a node belongs to, with the same names as the checkpoints, the graph and the tables.

``onnx``, ``onnxscript`` and ``onnxruntime`` are the optional extra ``onnx``
(``pip install "inception-explorer[onnx]"``): ``require()`` raises ``OnnxMissing`` naming it.
"""

from __future__ import annotations

import ast
import importlib
import json
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from explorer.core.i18n import _

OPSET = 20            # torch 2.14's dynamo exporter default; stated in the file and every message
CHECK_BATCH = 3       # the numerical check's batch; the file itself is exported at batch 1
TOLERANCE = 1e-4      # max |ONNX Runtime - PyTorch| / max(1, max |PyTorch|), float32
EXTRA = "onnx"
MODULES = ("onnx", "onnxscript", "onnxruntime")
INPUT_NAME = "image"
OUTPUT_NAME = "logits"
# where the dynamo exporter writes a node's module paths (outermost first) and their classes
SCOPE_KEY = "pkg.torch.onnx.name_scopes"
CLASS_KEY = "pkg.torch.onnx.class_hierarchy"


class OnnxMissing(ImportError):
    """The optional extra is not installed."""


class ExportCheckFailed(ValueError):
    """ONNX Runtime's outputs differ from PyTorch's by more than the tolerance."""


def missing() -> list[str]:
    """The extra's modules that cannot be imported here."""
    out = []
    for name in MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            out.append(name)
    return out


def missing_message(gone: list[str]) -> str:
    """What to install, in the run's language (English outside a page)."""
    return _("ONNX export needs the optional extra '{extra}' ({modules}); missing here: {missing}. "
             "Install it with: {command}").format(
                 extra=EXTRA, modules=", ".join(MODULES), missing=", ".join(gone),
                 command=f'pip install "inception-explorer[{EXTRA}]"')


def require() -> None:
    gone = missing()
    if gone:
        raise OnnxMissing(missing_message(gone))


@dataclass
class Exported:
    """An export that passed its check: the file's bytes and what it says about itself."""

    data: bytes
    opset: int
    input_size: int
    check_batch: int
    max_abs_diff: float
    output_scale: float                  # max(1, the largest |output|): what the diff is relative to
    tolerance: float
    nodes: int
    named_nodes: int                     # nodes whose name carries a module path
    metadata: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """The export and its check in words, in the run's language."""
        values = dict(opset=self.opset, input=f"{INPUT_NAME} [batch, 3, {self.input_size}, "
                      f"{self.input_size}]", nodes=self.nodes, size=f"{len(self.data) / 2**20:.1f}",
                      batch=self.check_batch, diff=f"{self.max_abs_diff:.2e}",
                      scale=f"{self.output_scale:.3g}", scaled=f"{self.scaled_diff:.2e}",
                      tolerance=f"{self.tolerance:.0e}")
        if self.output_scale > 1:
            return _("ONNX opset {opset}, input {input} (batch dynamic), {nodes} nodes, {size} MiB; "
                     "checked: ONNX Runtime vs PyTorch on a random batch of {batch}, max "
                     "|difference| {diff} on outputs up to {scale} ({scaled} of that) (allowed "
                     "{tolerance} of it)").format(**values)
        return _("ONNX opset {opset}, input {input} (batch dynamic), {nodes} nodes, {size} MiB; "
                 "checked: ONNX Runtime vs PyTorch on a random batch of {batch}, max |difference| "
                 "{diff} (allowed {tolerance})").format(**values)

    @property
    def scaled_diff(self) -> float:
        return self.max_abs_diff / self.output_scale

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_bytes(self.data)
        return path


def node_scope(node) -> str | None:
    """The qualified name of the layer that made ``node`` ("" for the network itself), from
    the dynamo exporter's metadata; None when it recorded none. A layer is the innermost module,
    except inside a ``ConvBN`` (conv -> BN -> ReLU, one layer of the papers' tables): the
    exporter fuses its BN into the conv, so naming the conv after ``.bn`` would mislead."""
    props = {p.key: p.value for p in node.metadata_props}
    try:
        scopes = ast.literal_eval(props[SCOPE_KEY])
        classes = ast.literal_eval(props.get(CLASS_KEY, "[]"))
    except (KeyError, ValueError, SyntaxError):
        return None
    modules = scopes[:-1]  # the list ends with the FX node's own name
    for path, cls in zip(modules, classes):
        if cls.rsplit(".", 1)[-1] == "ConvBN":
            return path
    return modules[-1] if modules else ""


def name_nodes(graph) -> int:
    """Rename every node to ``<module path>/<op type>`` (numbered where one module makes several
    of the same op): Netron shows ``inception_b.3.branches.7x7.1/Conv``. Returns the count
    of nodes that got a module path."""
    seen: Counter = Counter()
    named = 0
    for node in graph.node:
        scope = node_scope(node)
        if scope is None:
            continue
        base = f"{scope or 'net'}/{node.op_type}"
        seen[base] += 1
        node.name = base if seen[base] == 1 else f"{base}_{seen[base] - 1}"
        named += bool(scope)
    return named


def _outputs(result) -> list[torch.Tensor]:
    if isinstance(result, torch.Tensor):
        return [result]
    return [t for t in result if isinstance(t, torch.Tensor)]


def session(data: bytes | str, threads: int | None = None):
    """An ONNX Runtime CPU session on a model (its bytes, or a file's path), on ``threads``
    (default: torch's); the settings are ``ort_engine.cpu_session``'s."""
    require()
    from explorer.runtime.ort_engine import cpu_session

    return cpu_session(data, threads or torch.get_num_threads())


def export_model(model: nn.Module, input_size: int, *, opset: int = OPSET,
                 check_batch: int = CHECK_BATCH, tolerance: float = TOLERANCE, seed: int = 0,
                 metadata: dict | None = None) -> Exported:
    """Export ``model`` (eval mode, float32; CPU or any device: a copy on the CPU is exported)
    at batch 1 with a dynamic batch dimension, check it, and return it (not written yet)."""
    require()
    import onnx

    if next(model.parameters()).device.type == "meta":
        raise ValueError("an ONNX export needs weights: build the model on 'cpu', not 'meta'")
    import copy

    from explorer.runtime.fast import fold_batchnorm

    model = model.eval()
    # a copy with each BN folded into the conv before it, on the CPU: the exporter would fuse
    # them too, but name a pre-activation ResNet's fused conv after its BN; this keeps the
    # conv's own name
    model = copy.deepcopy(model).cpu()
    with torch.no_grad():
        fold_batchnorm(model)
    example = torch.zeros(1, 3, input_size, input_size)
    batch = torch.export.Dim("batch", min=1, max=1024)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's notes on its own internals
        program = torch.onnx.export(model, (example,), dynamo=True, opset_version=opset,
                                    input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                    dynamic_shapes=({0: batch},), verbose=False,
                                    report=False)
    proto = program.model_proto
    named = name_nodes(proto.graph)
    stated = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))

    # the check: another batch size than the exported one, random images
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(check_batch, 3, input_size, input_size, generator=gen)
    with torch.no_grad():
        expected = _outputs(model(x))
    data = proto.SerializeToString()
    got = session(data).run(None, {INPUT_NAME: x.numpy()})
    diff = max(float((torch.from_numpy(g) - e).abs().max()) for g, e in zip(got, expected))
    scale = max([1.0] + [float(e.abs().max()) for e in expected])
    if len(got) != len(expected) or not diff / scale <= tolerance:  # "not <=" catches NaN too
        raise ExportCheckFailed(_(
            "the ONNX file's outputs differ from PyTorch's by {diff} on outputs up to {scale} "
            "(allowed {tolerance} of max(1, that)) on a random batch of {batch}: not written")
            .format(diff=f"{diff:.3g}", scale=f"{scale:.3g}", tolerance=f"{tolerance:g}",
                    batch=check_batch))

    info = {"opset": str(stated), "input": f"{INPUT_NAME} [batch, 3, {input_size}, {input_size}] "
            "float32, batch dynamic", "input_size": str(input_size),
            "check": f"onnxruntime vs PyTorch, random batch of {check_batch}, max abs diff "
                     f"{diff:.3e} on outputs up to {scale:.4g} (tolerance {tolerance:g} of "
                     "max(1, that))",
            "producer": f"inception-explorer, torch {torch.__version__}",
            **{k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}}
    del proto.metadata_props[:]
    for k, v in info.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    proto.doc_string = "; ".join(f"{k}: {v}" for k, v in info.items())
    onnx.checker.check_model(proto)
    return Exported(proto.SerializeToString(), stated, input_size, check_batch, diff, scale,
                    tolerance,
                    len(proto.graph.node), named, info)


def export_variant(variant, *, weights=None, input_size: int | None = None,
                   opset: int = OPSET, seed: int = 0, **config) -> Exported:
    """Build ``variant`` (a name with its ``config``, or a NetSpec as it is) with random weights
    from ``seed``, or the checkpoint file ``weights``, and export it (``export_model``). The
    file's metadata names the variant, its build options, the input size, the weights and holds
    the network's NetSpec as JSON (``netspec``): the file says what it is, in our vocabulary."""
    require()  # before the build: a missing extra is said at once
    from explorer.runtime.build import build, build_at, native_size
    from explorer.spec.netspec import NetSpec
    from explorer.variants import VARIANTS

    size = native_size(variant, input_size)
    torch.manual_seed(seed)
    if weights is None:
        model = build_at(variant, input_size=input_size, **config)
    elif isinstance(variant, NetSpec):
        model = build(variant, weights=weights)
    else:
        model = build(variant, weights=weights, input_size=size, **config)
    spec = getattr(model, "spec", None)
    name = spec.variant if spec is not None else str(variant)
    described = {"variant": name, "layout": str(model.layout),
                 "weights": Path(str(weights)).name if weights is not None
                 else f"random (seed {seed}): for the graph and timing, not for predictions"}
    if getattr(model, "config", None) is not None:
        described["config"] = {k: v for k, v in vars(model.config).items() if v is not None}
    info = VARIANTS.get(name)
    if info is not None:
        described |= {"title": info.title, "paper": f"{info.paper} (arXiv {info.arxiv})"}
    if spec is not None:
        described["netspec"] = spec.to_json(indent=None)
    return export_model(model, size, opset=opset, seed=seed, metadata=described)


def onnx_file_name(variant: str, settings: str = "") -> str:
    return f"{variant}{'_' + settings if settings else ''}.onnx"


# weights held at the peak of an export: the model, the exported program's constants, the ONNX
# proto, its serialised bytes (twice: checked, then with the metadata) and ONNX Runtime's copy.
# Calibrated on Inception-v3 at 299 px (91 MiB of weights): the export and its check raised the
# peak RSS by 780 MiB over the built model after a batch-3 forward pass (970 MiB over imports);
# this estimate says 1.2 GiB.
WEIGHT_COPIES = 6
EXPORTER_BYTES = 512 * 2**20  # the exporter's own tracing and rewriting, beyond the tensors


def estimate(variant, *, input_size: int | None = None, **config):
    """What ``export_variant`` holds at most (``explorer.runtime.memory.Estimate``): the
    forward pass of the check batch, in PyTorch and ONNX Runtime, and the weights' copies."""
    from explorer.runtime.memory import Estimate, estimate_inference

    run = estimate_inference(variant, batch=CHECK_BATCH, input_size=input_size, **config)
    return Estimate(f"an ONNX export of {variant} and its check (batch {CHECK_BATCH})", "cpu",
                    WEIGHT_COPIES * run.weights, 2 * run.activations,
                    run.runtime + EXPORTER_BYTES)
