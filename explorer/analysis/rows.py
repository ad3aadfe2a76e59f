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

from dataclasses import asdict, dataclass, field
from functools import lru_cache

from explorer.analysis import receptive
from explorer.analysis.probe import probe, probe_spec
from explorer.core.export import analysis_csv
from explorer.core.i18n import N_
from explorer.core.keys import freeze, thaw
from explorer.spec import fields as spec_fields
from explorer.spec import ops
from explorer.spec.netspec import NetSpec
from explorer.spec.walk import CENTRES, Node, Trace
from explorer.variants import ConfigError, describe

DEPTHS = ("stage", "block", "layer")
MACS_NOTE = "MACs: multiply-accumulates of conv and linear layers (1 MAC = 2 FLOPs)"
PARAMS_NOTE = ("params: every learnable tensor, BatchNorm's scale and shift included "
               "(bn_params: that BatchNorm share)")
# The notes of an analysis (``rf_notes``) are English, as cached: a page says them in its
# language with explorer.core.i18n.again(note, *RF_NOTES).
NO_FIELDS = N_("no receptive fields: {note}")
RF_NOTES = (NO_FIELDS, CENTRES, *spec_fields.NOTES)


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


def analyze(variant_or_spec, *, input_size: int | None = None, depth: str = "block",
            replace=None, **config) -> Analysis:
    """Rows and totals for a variant name (cached by variant and config), a NetSpec, or a
    model built by ``explorer.build`` (which keeps its spec). ``replace`` ({name: block}):
    those blocks (or every block of a named stage) designed anew, see ``explorer.spec.replace``."""
    if depth not in DEPTHS:
        raise ConfigError(f"depth must be one of {', '.join(DEPTHS)}, got {depth!r}")
    if replace:
        from explorer.spec.replace import replaced
        if isinstance(variant_or_spec, str):
            layout = config.pop("layout", None)
            variant_or_spec = describe(variant_or_spec, layout, input_size=input_size, **config)
            config = {}
        spec = getattr(variant_or_spec, "spec", variant_or_spec)
        if isinstance(spec, NetSpec):
            variant_or_spec = replaced(spec, replace)
    if isinstance(variant_or_spec, str):
        frozen = freeze(config)
        try:
            hash((input_size, frozen))
        except TypeError:  # an unhashable option value: let the config check name it
            return _analyze_variant.__wrapped__(variant_or_spec, input_size, depth, frozen)
        return _analyze_variant(variant_or_spec, input_size, depth, frozen)
    spec = getattr(variant_or_spec, "spec", variant_or_spec)
    if not isinstance(spec, NetSpec):
        raise ConfigError("analyze takes a variant name, a NetSpec, or a model made by "
                          f"explorer.build; got {type(variant_or_spec).__name__}")
    if config:
        raise ConfigError("a NetSpec states its own configuration: analyze(spec) takes only "
                          "input_size and depth")
    return _analyze_spec(spec, input_size or spec.input_size, depth)


@lru_cache(maxsize=256, typed=True)
def _analyze_variant(variant: str, input_size, depth: str, frozen: tuple) -> Analysis:
    config = thaw(frozen)
    layout = config.pop("layout", None)  # None: the variant's own default
    found = probe(variant, layout, input_size=input_size, **config)
    shown = {k: v for k, v in asdict(found.config).items() if k != "input_size"}
    return _run(found.trace, depth, name=variant, layout=found.layout, config=shown)


@lru_cache(maxsize=64)
def _analyze_spec(spec: NetSpec, input_size: int, depth: str) -> Analysis:
    found = probe_spec(spec, input_size)
    return _run(found.trace, depth, name=spec.variant, layout=spec.layout,
                config={k: ops.listed(v) for k, v in spec.config})


SKIPPED = ("relu", "dropout", "flatten")  # layers with no row of their own at layer depth


def _layers(node: Node):
    """Depth "layer": convs (with their BN and ReLU), pools, fc, norms -- and the joins: each
    concat and each residual block (whose add is drawn after its 1x1 expansion)."""
    for child in node.children:
        if child.leaf:
            if child.op not in SKIPPED:
                yield child
            continue
        yield from _layers(child)
        if child.op in ("concat", "residual"):
            yield child


def _units(trace: Trace, depth: str) -> list[Node]:
    """The nodes that make the rows, in model order."""
    root = trace.root
    if depth == "layer":
        return [n for n in _layers(root) if not _is_aux(trace, n.name)] + [
            n for a in trace.spec.aux for n in _layers(trace.nodes[a.name])]
    stages = [n for n in root.children if n.op == "stage"]
    aux = [trace.nodes[a.name] for a in trace.spec.aux]
    head = trace.nodes["head"]
    if depth == "stage":
        return stages + aux + [head]
    return [b for s in stages for b in s.children] + aux + [
        n for n in head.children if n.op not in ("flatten", "dropout")]


def _is_aux(trace: Trace, name: str) -> bool:
    return any(name == a or name.startswith(a + ".") for a in trace.aux_taps.values())


def _kind(node: Node) -> str:
    return node.info.kind or ops.ROW_KIND.get(node.op, "conv" if node.op == "expand" else node.op)


def _run(trace: Trace, depth: str, *, name: str, layout: str, config: dict) -> Analysis:
    """Rows and totals from the spec's walk."""
    root = trace.root
    total_params = root.params
    total_macs = root.macs  # the aux heads are a training cost: not in the walk's root total
    position = {n: i for i, n in enumerate(trace.order)}
    rows = []
    for node in _units(trace, depth):
        if node.op in ("concat", "residual") and depth == "layer":
            rows.extend(_join_rows(node, trace, position))
        else:
            rows.append((position[node.name], _row(node)))
    rows = [r for _, r in sorted(rows, key=lambda pr: pr[0])]
    rows = [Row(**{**asdict(r), "params_share": r.params / total_params if total_params else 0.0,
                   "macs_share": r.macs / total_macs if total_macs else 0.0,
                   "bn_params": trace.nodes[r.name].bn_params if r.name in trace.nodes else 0})
            for r in rows]
    aux_prefixes = tuple(f"{a}." for a in trace.aux_taps.values())
    rows, whole, notes = _with_fields(trace, rows, aux_prefixes)
    # Whatever the depth, the total counts every layer's output once (the memory a training
    # step keeps for the backward pass, per image), so it compares across depths and variants.
    total_act = sum(ops.numel(n.out_shape) * 4 for n in _layers(root) if not _is_aux(trace, n.name))
    return Analysis(name, layout, trace.input_size, depth, tuple(rows), total_params, total_macs,
                    total_act, config, total_bn_params=root.bn_params, rf_whole_input=whole,
                    rf_notes=tuple(notes))


def _with_fields(trace: Trace, rows, aux_prefixes):
    """Rows with their receptive fields, the first row that sees the whole input, and notes."""
    fields, size = trace.fields, trace.input_size
    if not fields:
        return rows, None, [NO_FIELDS.format(note=n) for n in trace.notes[:1]]
    out, whole = [], None
    for r in rows:
        f = fields.get(r.name)
        if f is None:
            out.append(r)
            continue
        if len(r.output_shape) == 3 and r.output_shape[1:] != (f[0].size, f[1].size):
            raise RuntimeError(f"receptive-field walk disagrees with the shapes at "
                               f"{r.name}: {(f[0].size, f[1].size)} vs {r.output_shape[1:]}")
        if whole is None and not r.name.startswith(aux_prefixes) \
                and receptive.sees_whole_input(f, size):
            whole = r.name
        out.append(Row(**{**asdict(r), "rf": tuple(a.rf for a in f),
                          "jump": tuple(a.jump for a in f),
                          "rf_offset": tuple(receptive.number(a.start) for a in f)}))
    return out, whole, list(trace.notes)


def _row(node: Node) -> Row:
    return Row(node.name, _kind(node), node.info.figure, node.in_shape, node.out_shape,
               node.params, node.macs, ops.numel(node.out_shape) * 4)


def _join_rows(node: Node, trace: Trace, position: dict) -> list[tuple[float, Row]]:
    """Layer-depth rows for the joins, which have no module of their own: the concat of a
    block's branches and, for a residual block, the (scaled) add onto its shortcut (the concat
    then comes right after its last branch)."""
    name, in_shape, out_shape = node.name, node.in_shape, node.out_shape
    if node.op == "residual":
        block = node.entry
        branches = node.child("branches").children
        cat_shape = (sum(b.out_shape[0] for b in branches), *branches[0].out_shape[1:])
        # Inception-ResNet's scaled add shows its scale; a ResNet's bottleneck (no 1x1 expansion)
        # adds as it is
        label = "residual add" + (f" x{block.scale:g}" if block.expand else "") + (
            "" if block.act else " (no ReLU)")
        rows = [(position[name], Row(f"{name}.add", label, "", in_shape, out_shape, 0, 0,
                                     ops.numel(out_shape) * 4))]
        if len(branches) > 1:  # one branch (a ResNet's bottleneck) is joined by nothing
            rows.append((position[branches[-1].name] + 0.5,
                         Row(f"{name}.concat", "concat", "", in_shape, cat_shape, 0, 0,
                             ops.numel(cat_shape) * 4)))
        return rows
    return [(position[name], Row(f"{name}.concat", "concat", "", in_shape, out_shape, 0, 0,
                                 ops.numel(out_shape) * 4))]
