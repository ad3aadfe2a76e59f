"""Cost and shape of a network, stage by stage, block by block or layer by layer.

The shape probe (``explorer.analysis.probe``: a "meta"-device build, no weights, no memory) gives every
module's input and output shape, propagated from the modules' arguments. From those, per row:

- params: the tensors under the module, BatchNorm's scale and shift included (``bn_params``
  is that BatchNorm share, already inside ``params``: a 3x3 conv from 3 to 32 channels has 864
  weights + 64 BN = 928);
- MACs: multiply-accumulates of conv and linear layers only (the convention of torchvision's
  "GFLOPS" and of ``torch.utils.flop_counter`` divided by 2; BN, pools and adds are not counted);
- activation memory: the bytes of the row's output in float32, for one image;
- receptive field (``explorer.analysis.receptive``): per axis (h, w), the input pixels one output unit
  sees (``rf``), the input pixels between neighbouring units (``jump``) and the input
  coordinate of the first unit's centre (``rf_offset``), over the real graph of branches and adds.

Totals are the inference cost (eval mode). Auxiliary heads, when built, get their own rows;
their MACs are a training cost and are not part of the totals.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from functools import lru_cache

from torch import nn

from explorer.analysis import receptive
from explorer.analysis.probe import probe, record_forward
from explorer.core.export import analysis_csv
from explorer.core.keys import freeze, thaw
from explorer.variants import ConfigError
from explorer.variants.blocks import Concat, ConvBN, InceptionNet, Residual, block_info
from explorer.variants.shapes import Unsupported, propagate
from explorer.variants.shapes import macs as layer_macs

DEPTHS = ("stage", "block", "layer")
MACS_NOTE = "MACs: multiply-accumulates of conv and linear layers (1 MAC = 2 FLOPs)"
PARAMS_NOTE = ("params: every learnable tensor, BatchNorm's scale and shift included "
               "(bn_params: that BatchNorm share)")


@dataclass(frozen=True)
class Row:
    name: str
    kind: str
    figure: str
    input_shape: tuple
    output_shape: tuple
    params: int
    macs: int
    activation_bytes: int
    params_share: float = 0.0
    macs_share: float = 0.0
    bn_params: int = 0  # BatchNorm scale + shift, already counted in params
    rf: tuple | None = None          # (h, w) input pixels one output unit sees
    jump: tuple | None = None        # (h, w) input pixels between neighbouring units
    rf_offset: tuple | None = None   # (h, w) input coordinate of the first unit's centre


@dataclass(frozen=True)
class Analysis:
    variant: str
    layout: str
    input_size: int
    depth: str
    rows: tuple[Row, ...]
    total_params: int
    total_macs: int
    total_activation_bytes: int
    config: dict = field(default_factory=dict)
    total_bn_params: int = 0  # BatchNorm scale + shift, already counted in total_params
    rf_whole_input: str | None = None   # the first row whose central unit sees every pixel
    rf_notes: tuple[str, ...] = ()      # joins whose branch centres disagree, or why no fields

    def to_dict(self) -> dict:
        out = {"variant": self.variant, "layout": self.layout, "input_size": self.input_size,
               "depth": self.depth, "total_params": self.total_params,
               "total_macs": self.total_macs,
               "total_activation_bytes": self.total_activation_bytes,
               "macs_convention": MACS_NOTE,
               # every setting, so that a saved file says what it is
               "config": {"variant": self.variant, "layout": self.layout,
                          "input_size": self.input_size, "depth": self.depth, **self.config},
               "total_bn_params": self.total_bn_params, "params_convention": PARAMS_NOTE,
               "rf_whole_input": self.rf_whole_input, "rf_notes": list(self.rf_notes),
               "rows": [asdict(r) for r in self.rows]}
        for row in out["rows"]:
            for key in ("input_shape", "output_shape", "rf", "jump", "rf_offset"):
                if row[key] is not None:
                    row[key] = list(row[key])
        return out

    def to_csv(self) -> str:
        return analysis_csv(self.to_dict())


def analyze(variant_or_model, *, input_size: int | None = None, depth: str = "block",
            **config) -> Analysis:
    """Rows and totals for a variant name (cached by variant and config) or a built model."""
    if depth not in DEPTHS:
        raise ConfigError(f"depth must be one of {', '.join(DEPTHS)}, got {depth!r}")
    if isinstance(variant_or_model, str):
        frozen = freeze(config)
        try:
            hash((input_size, frozen))
        except TypeError:  # an unhashable option value: let the config check name it
            return _analyze_variant.__wrapped__(variant_or_model, input_size, depth, frozen)
        return _analyze_variant(variant_or_model, input_size, depth, frozen)
    model = variant_or_model
    if isinstance(model, InceptionNet) and hasattr(model, "variant"):
        cfg = {k: v for k, v in asdict(model.config).items() if k != "input_size"}
        return analyze(model.variant, layout=model.layout, input_size=input_size, depth=depth,
                       **{**cfg, **config})
    if input_size is None:
        raise ValueError("input_size is needed to analyse a model that is not one of ours")
    # Never hook the caller's module (it may be shared): analyse a meta copy.
    skeleton = copy.deepcopy(model).to("meta").eval()
    try:
        shapes, order = propagate(skeleton, (3, input_size, input_size))
    except Unsupported:  # not only our blocks and the layers they use: a forward pass
        shapes, order = record_forward(skeleton, input_size)
    return _run(skeleton, input_size, depth, shapes, order, layer_macs(skeleton, shapes),
                name=type(model).__name__, layout="", config={})


@lru_cache(maxsize=256, typed=True)
def _analyze_variant(variant: str, input_size, depth: str, frozen: tuple) -> Analysis:
    config = thaw(frozen)
    layout = config.pop("layout", None)  # None: the variant's own default
    found = probe(variant, layout, input_size=input_size, **config)
    shown = {k: v for k, v in asdict(found.config).items() if k != "input_size"}
    return _run(found.model, found.input_size, depth, found.shapes, found.order, found.macs,
                name=variant, layout=found.layout, config=shown)


def _kind(module: nn.Module) -> str:
    kind = block_info(module).kind
    if kind:
        return kind
    if isinstance(module, (ConvBN, nn.Conv2d)):
        return "conv"
    if isinstance(module, (nn.MaxPool2d, nn.AdaptiveMaxPool2d)):
        return "max pool"
    if isinstance(module, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
        return "avg pool"
    if isinstance(module, nn.Linear):
        return "fc"
    return type(module).__name__.lower()


def _layers(module: nn.Module, prefix: str = ""):
    """Depth "layer": convs (with their BN and ReLU), pools, fc, norms -- and the joins: each
    Concat and each Residual (whose add is drawn after its 1x1 expansion)."""
    for name, child in module.named_children():
        path = f"{prefix}.{name}" if prefix else name
        if isinstance(child, ConvBN) or not list(child.children()):
            if not isinstance(child, (nn.ReLU, nn.Dropout, nn.Flatten, nn.Identity)):
                yield path, child
            continue
        yield from _layers(child, path)
        if isinstance(child, Concat):
            yield path, child


def _units(model: nn.Module, depth: str) -> list[tuple[str, nn.Module]]:
    """The (name, module) pairs that make the rows, in model order."""
    if isinstance(model, InceptionNet) and depth != "layer":
        aux = [(name, getattr(model, name)) for name in model.aux_taps.values()]
        if depth == "stage":
            return [(s, getattr(model, s)) for s in model.stage_names] + aux + [("head", model.head)]
        units = [(f"{s}.{b}", m) for s in model.stage_names
                 for b, m in getattr(model, s).named_children()]
        head = [(f"head.{n}", m) for n, m in model.head.named_children()
                if not isinstance(m, (nn.Flatten, nn.Dropout))]
        return units + aux + head
    return list(_layers(model))


def _run(model: nn.Module, size: int, depth: str, shapes: dict, order, macs: dict, *,
         name: str, layout: str, config: dict) -> Analysis:
    """Rows and totals from a probe's records: ``shapes`` (module name -> (input shape, output
    shape)), ``order`` (names in the order their forward finishes) and ``macs`` (conv / linear
    name -> MACs). ``model`` is only read."""
    taps = getattr(model, "aux_taps", {})
    params, bn = _param_counts(model)
    aux_prefixes = tuple(f"{a}." for a in taps.values())
    total_params = params[""]
    total_macs = sum(v for k, v in macs.items() if not k.startswith(aux_prefixes))

    def macs_under(prefix: str) -> int:
        return sum(v for k, v in macs.items() if k == prefix or k.startswith(prefix + "."))

    position = {n: i for i, n in enumerate(order)}
    rows = []
    for unit_name, mod in _units(model, depth):
        if unit_name not in shapes:
            continue  # built but never run
        if isinstance(mod, Concat) and depth == "layer":
            rows.extend(_join_rows(unit_name, mod, shapes, position))
        else:
            rows.append((position[unit_name],
                         _row(unit_name, mod, shapes, params[unit_name], macs_under(unit_name))))
    rows = [r for _, r in sorted(rows, key=lambda pr: pr[0])]
    rows = [Row(**{**asdict(r), "params_share": r.params / total_params if total_params else 0.0,
                   "macs_share": r.macs / total_macs if total_macs else 0.0,
                   "bn_params": bn[r.name] if r.name in bn else 0}) for r in rows]
    rows, whole, notes = _with_fields(model, size, rows, aux_prefixes)
    # Whatever the depth, the total counts every layer's output once (the memory a training
    # step keeps for the backward pass, per image), so it compares across depths and variants.
    total_act = sum(_numel(shapes[n][1]) * 4 for n, _ in _layers(model)
                    if n in shapes and not n.startswith(aux_prefixes))
    return Analysis(name, layout, size, depth, tuple(rows), total_params, total_macs, total_act,
                    config, total_bn_params=bn[""], rf_whole_input=whole,
                    rf_notes=tuple(notes))


def _param_counts(model: nn.Module) -> tuple[dict[str, int], dict[str, int]]:
    """Parameters under every module, and the BatchNorm share of them, by qualified name:
    summed up the tree in one pass (asking each module for all its parameters is quadratic
    in the depth of the tree)."""
    params: dict[str, int] = {}
    bn: dict[str, int] = {}

    def visit(name: str, m: nn.Module) -> tuple[int, int]:
        own = sum(p.numel() for p in m.parameters(recurse=False))
        total, norm = own, own if isinstance(m, nn.modules.batchnorm._BatchNorm) else 0
        for child_name, child in m.named_children():
            t, b = visit(f"{name}.{child_name}" if name else child_name, child)
            total, norm = total + t, norm + b
        params.setdefault(name, total)
        bn.setdefault(name, norm)
        return total, norm

    visit("", model)
    if params[""] != sum(p.numel() for p in model.parameters()):  # shared modules or tensors
        params = {n: sum(p.numel() for p in m.parameters()) for n, m in model.named_modules()}
        bn = {n: sum(p.numel() for b in m.modules() if isinstance(b, nn.modules.batchnorm._BatchNorm)
                     for p in b.parameters()) for n, m in model.named_modules()}
    return params, bn


def _with_fields(model, size, rows, aux_prefixes):
    """Rows with their receptive fields, the first row that sees the whole input, and notes."""
    try:
        fields, notes = receptive.fields(model, size)
    except receptive.Unsupported as err:  # a model not built from our blocks
        return rows, None, [f"no receptive fields: {err}"]
    out, whole = [], None
    for r in rows:
        f = fields.get(r.name)
        if f is None:
            out.append(r)
            continue
        if len(r.output_shape) == 3 and r.output_shape[1:] != (f[0].size, f[1].size):
            raise RuntimeError(f"receptive-field walk disagrees with the forward pass at "
                               f"{r.name}: {(f[0].size, f[1].size)} vs {r.output_shape[1:]}")
        if whole is None and not r.name.startswith(aux_prefixes) \
                and receptive.sees_whole_input(f, size):
            whole = r.name
        out.append(Row(**{**asdict(r), "rf": tuple(a.rf for a in f),
                          "jump": tuple(a.jump for a in f),
                          "rf_offset": tuple(receptive.number(a.start) for a in f)}))
    return out, whole, notes


def _row(name, mod, shapes, params, macs) -> Row:
    in_shape, out_shape = shapes[name]
    return Row(name, _kind(mod), block_info(mod).figure, in_shape, out_shape,
               params, macs, _numel(out_shape) * 4)


def _join_rows(name: str, mod: Concat, shapes: dict, position: dict) -> list[tuple[float, Row]]:
    """Layer-depth rows for the functional joins, which have no module of their own: the
    concat of a block's branches and, for a residual block, the scaled add after the 1x1
    expansion (the concat then comes just before that expansion)."""
    in_shape, out_shape = shapes[name]
    if isinstance(mod, Residual):
        cat_shape = shapes[f"{name}.up"][0]
        label = "residual add" + ("" if mod.act is not None else " (no ReLU)")
        return [(position[f"{name}.up"] - 0.5,
                 Row(f"{name}.concat", "concat", "", in_shape, cat_shape, 0, 0, _numel(cat_shape) * 4)),
                (position[name], Row(f"{name}.add", f"{label} x{mod.scale:g}", "", in_shape,
                                     out_shape, 0, 0, _numel(out_shape) * 4))]
    return [(position[name], Row(f"{name}.concat", "concat", "", in_shape, out_shape, 0, 0,
                                 _numel(out_shape) * 4))]


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n

