"""Draw a variant as Graphviz DOT that reads like the papers' figures, and render it.

``to_dot`` reads the shape probe (``explorer.analysis.probe``: a meta-device build, no memory, no weights,
every module's output shape) and walks the block vocabulary (``ConvBN``,
``Concat``, ``Residual``, heads). Stages become clusters labelled with their paper figure; edges
carry "C x H x W" shapes. The drawing is built with the ``graphviz`` package and laid out by its
``dot`` program.

Two ways to choose what is drawn:

- ``depth`` ("stage", "block", "layer") draws the whole network at one level;
- ``expanded`` (a set of qualified names) draws the interactive explorer's view: every stage is
  one node unless it is expanded (then its blocks, each one node unless expanded into its
  branches and layers). Node ids are the modules' qualified names as in the analysis rows
  (``inception_a.0``, ``reduction_a``, ``inception_a.0.branches.1x1.0``, ``inception_a.0.concat``).
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from functools import lru_cache

import graphviz

from explorer.analysis.probe import probe, probe_spec
from explorer.analysis.rows import DEPTHS
from explorer.core.i18n import CJK_FONT, N_, _, language
from explorer.core.keys import freeze, thaw
from explorer.core.text import shape_text
from explorer.spec import ops
from explorer.spec.netspec import NetSpec
from explorer.spec.walk import Node, Trace
from explorer.variants import ConfigError, describe

FORMATS = ("svg", "png")
OVERLAYS = {"params": N_("parameters"), "macs": "MACs", "activations": N_("activation memory"),
            "latency": N_("measured latency"), "rf": N_("receptive field")}  # shown with _()
MISSING = N_("Graphviz's `dot` program is not installed; install it (e.g. `apt-get install "
              "graphviz`, or see https://graphviz.org/download/) or download the DOT source instead")
FILL = {"conv": "#dbe9f6", "pool": "#fdebd0", "join": "#eeeeee", "block": "#dbe9f6",
        "head": "#e2f0d9", "aux": "#f4f4f4", "layer": "#ffffff"}
# A sequential colour scale (light yellow -> dark red, as ColorBrewer's YlOrRd) for overlays.
RAMP = ("#ffffcc", "#fed976", "#fd8d3c", "#e31a1c", "#800026")
FONTS = {False: (14, 11, 16), True: (18, 14, 20)}  # (node, edge, title) points; True: projector


class GraphvizMissing(RuntimeError):
    """The ``dot`` binary is not on PATH; the DOT source itself is still available."""


def to_dot(variant, *, depth: str = "block", collapse: bool = True,
           expanded: Iterable[str] | None = None, values: Mapping[str, float] | None = None,
           overlay: str | None = None, value_scale: tuple[float, float] | None = None,
           projector: bool = False, replace=None, **config) -> str:
    """Graphviz DOT for ``variant`` (a name, or a NetSpec: then no ``config``); ``replace``
    ({name: block}) draws it with those blocks designed anew (``explorer.spec.replace``).

    Without ``expanded``, the whole network at ``depth``:

    - "stage": one node per stage;
    - "block": one node per block (stem layers count as blocks);
    - "layer": each block's parallel branches side by side, joined by a concat node; residual
      blocks add the linear 1x1 filter expansion, the scaled add with its identity shortcut and
      the ReLU.

    ``collapse`` draws a run of identical consecutive blocks once, marked "xN".

    With ``expanded`` (qualified names, see ``expandable``), the explorer's view: each stage is
    one node unless expanded, each block one node unless expanded (into its branches, joins and
    layers); ``depth`` and ``collapse`` are then ignored. Unknown names are ignored (the caller
    reports them: ``unknown_names``).

    ``values`` (qualified name -> number, e.g. ``overlay_values``) colours the nodes on a log
    scale from ``value_scale`` (low, high; default: the drawn values' range) and adds the figure to
    their labels; ``overlay`` names it in the legend (a key of OVERLAYS). ``projector`` uses
    larger fonts. ``config`` takes build's options (layout, width, aux_logits, input_size, ...);
    invalid ones raise ConfigError.
    """
    if depth not in DEPTHS:
        raise ConfigError(f"unknown depth {depth!r}; choose one of: {', '.join(DEPTHS)}")
    if {"device", "weights"} & set(config):  # a drawing needs shapes only: always meta, no weights
        raise ConfigError("to_dot takes no device or weights: it draws a meta-device build")
    if overlay is not None and overlay not in OVERLAYS:
        raise ConfigError(f"unknown overlay {overlay!r}; choose one of: {', '.join(OVERLAYS)}")
    if replace:
        from explorer.spec.replace import replaced
        if not isinstance(variant, NetSpec):
            layout = config.pop("layout", None)
            variant = describe(variant, layout, **config)
            config = {}
        variant = replaced(variant, replace)
    view = (depth, bool(collapse), None if expanded is None else frozenset(map(str, expanded)),
            values, overlay, None if value_scale is None else tuple(value_scale), bool(projector))
    key = (variant, freeze(view), freeze(config), language())  # the words are the language's
    try:
        hash(key)
    except TypeError:  # an odd value: let the probe reject it with its own message, uncached
        return _to_dot.__wrapped__(*key)
    return _to_dot(*key)


@lru_cache(maxsize=64)
def _to_dot(variant, view: tuple, config: tuple, lang: str) -> str:
    depth, collapse, expanded, values, overlay, scale, projector = thaw(view)
    found = probe_spec(variant) if isinstance(variant, NetSpec) else probe(variant, **thaw(config))
    drawer = _Drawer(found.trace, depth, collapse, expanded, _Colours(values, scale, overlay),
                     projector)
    return drawer.draw(variant.variant if isinstance(variant, NetSpec) else variant,
                       found.input_size)


def expandable(variant: str, **config) -> dict[str, str]:
    """What the explorer's view can expand, in model order: qualified name -> "stage", "block"
    or "head" (heads and aux classifiers open into their layers)."""
    return dict(_expandable(variant, freeze(config)))


@lru_cache(maxsize=64)
def _expandable(variant: str, config: tuple) -> tuple:
    trace = probe(variant, **thaw(config)).trace
    out = []
    for stage in (n for n in trace.root.children if n.op == "stage"):
        out.append((stage.name, "stage"))
        out += [(block.name, "block") for block in stage.children if _is_block(block)]
    out += [("head", "head")] + [(aux, "head") for aux in trace.aux_taps.values()]
    return tuple(out)


def unknown_names(names: Iterable[str], known: Iterable[str]) -> list[str]:
    """The names that are not in ``known``, in their order, without repeats."""
    known = set(known)
    return list(dict.fromkeys(n for n in names if n not in known))


def matching_stage(name: str | None, stages: Iterable[str]) -> str | None:
    """The stage of ``stages`` (another network's) that matches the stage holding ``name``:
    same name, where Inception-ResNet's "inception_resnet_a" matches Inception-v4's
    "inception_a" (the same place in the network, the same grid)."""
    if not name:
        return None
    def plain(stage):
        return stage.replace("inception_resnet_", "inception_")
    stage = plain(name.split(".")[0])
    return next((s for s in stages if plain(s) == stage), None)


def overlay_values(rows: Iterable[Mapping], metric: str) -> dict[str, float]:
    """Qualified name -> figure of ``metric`` ("params", "macs", "activations", "rf": the
    larger axis of the receptive field) from analysis rows (``Analysis.to_dict()["rows"]``, any
    depth; pass every depth to colour any view)."""
    field = {"params": "params", "macs": "macs", "activations": "activation_bytes", "rf": "rf"}
    if metric not in field:
        raise ConfigError(f"unknown metric {metric!r}; choose one of: {', '.join(field)}")
    if metric == "rf":
        return {r["name"]: float(max(r["rf"])) for r in rows if r.get("rf")}
    return {r["name"]: float(r[field[metric]]) for r in rows}


def value_text(value: float, overlay: str | None) -> str:
    """A figure as a node label shows it: "1.2 M", "3.4 MiB", "5.6 ms"."""
    if overlay == "latency":
        return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"
    if overlay == "activations":
        return f"{value / 2**20:.1f} MiB" if value >= 2**20 else f"{value / 2**10:.0f} KiB"
    if overlay == "rf":
        return f"{value:g} px"
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.2f} {unit}"
    return f"{value:g}"


def legend(values: Mapping[str, float], scale: tuple[float, float] | None = None,
           overlay: str | None = None, steps: int = 5) -> list[tuple[str, str]]:
    """The overlay's legend: (colour, figure) from the low to the high end of the scale."""
    colours = _Colours(values, scale, overlay)
    if colours.lo is None:
        return []
    out = []
    for i in range(steps):
        v = math.exp(math.log(colours.lo) + i / (steps - 1) * (math.log(colours.hi) - math.log(colours.lo)))
        out.append((colours.colour(v), value_text(v, overlay)))
    return out


def value_range(*value_maps: Mapping[str, float], names: Iterable[str] | None = None):
    """(low, high) of the positive values over several maps (one scale for two graphs), only
    over ``names`` when given; None when there is none."""
    keep = None if names is None else set(names)
    vals = [v for m in value_maps for k, v in m.items() if v > 0 and (keep is None or k in keep)]
    return (min(vals), max(vals)) if vals else None


class _Colours:
    """Maps a value to a fill colour on a log scale (costs span orders of magnitude)."""

    def __init__(self, values, scale, overlay):
        self.values, self.overlay = dict(values or {}), overlay
        self.lo = self.hi = None
        rng = tuple(scale) if scale else value_range(self.values)
        if rng and rng[0] > 0:
            self.lo, self.hi = rng

    def colour(self, value: float) -> str:
        span = math.log(self.hi) - math.log(self.lo)
        t = 0.0 if span <= 0 else (math.log(max(value, self.lo)) - math.log(self.lo)) / span
        t = min(max(t, 0.0), 1.0) * (len(RAMP) - 1)
        i = min(int(t), len(RAMP) - 2)
        a, b = RAMP[i], RAMP[i + 1]
        mix = [round(int(a[j:j + 2], 16) * (1 - (t - i)) + int(b[j:j + 2], 16) * (t - i))
               for j in (1, 3, 5)]
        return "#" + "".join(f"{c:02x}" for c in mix)

    def attrs(self, name: str) -> dict:
        """Fill and font colour of node ``name`` (empty when it has no value to show)."""
        value = self.values.get(name)
        if self.lo is None or value is None or value <= 0:
            return {}
        fill = self.colour(value)
        dark = sum(int(fill[j:j + 2], 16) for j in (1, 3, 5)) < 3 * 140
        return {"fillcolor": fill, "fontcolor": "white" if dark else "black"}


def render(dot_source: str, fmt: str = "svg") -> bytes:
    """Lay out ``dot_source`` with Graphviz's ``dot`` and return the SVG or PNG bytes."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if shutil.which("dot") is None:
        raise GraphvizMissing(MISSING)
    try:
        return graphviz.Source(dot_source).pipe(format=fmt, engine="dot")
    except graphviz.ExecutableNotFound as err:
        raise GraphvizMissing(MISSING) from err
    except graphviz.CalledProcessError as err:
        raise RuntimeError(f"dot failed: {(err.stderr or b'').decode(errors='replace').strip()}") from err


def _text(text: str) -> str:
    """A label for the graphviz package (which quotes it and escapes double quotes): a
    backslash stays a backslash, a newline becomes a line break."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _titled(name: str, node: Node) -> str:
    figure = node.info.figure
    return f"{name}\n{figure}" if figure else name


def _is_block(node: Node) -> bool:
    return node.op in ("concat", "residual")


def layer_label(node: Node) -> tuple[str, str]:
    """(label, style) of one layer, in the papers' words: "1x7 conv, 192", "3x3 max pool /2"."""
    if node.op == "expand":  # Inception-ResNet's filter expansion: no BN, no ReLU
        return f"1x1 conv, {node.out_shape[0]} (linear)", "conv"
    if node.op == "relu":
        return "ReLU", "layer"
    return ops.label(node.entry)


def _leaves(node: Node) -> list[Node]:
    """The layers of a head, in order (Flatten only reshapes: not worth a node)."""
    if node.leaf or not node.children:
        return [] if node.op == "flatten" else [node]
    return [leaf for child in node.children for leaf in _leaves(child)]


def _branches(node: Node) -> list[Node]:
    return node.child("branches").children


class _Drawer:
    def __init__(self, trace: Trace, depth, collapse, expanded=None, colours=None,
                 projector=False):
        self.trace, self.depth, self.collapse = trace, depth, collapse
        self.expanded, self.colours = expanded, colours or _Colours(None, None, None)
        self.fonts = FONTS[bool(projector)]
        self.node_shape: dict[str, tuple] = {}
        self.graphs: list[graphviz.Digraph] = []  # the root, then the clusters we are inside
        # edges go at the root: an edge written inside a cluster pulls its nodes into it
        self.edges: list[list] = []

    def node(self, nid: str, label: str, shape: tuple, style: str = "layer") -> str:
        attrs = {"fillcolor": FILL[style], **({"shape": "ellipse"} if style == "join" else {})}
        value = self.colours.values.get(nid)
        if value is not None and self.colours.lo is not None and style != "join":
            label += "\n" + value_text(value, self.colours.overlay)
        attrs.update(self.colours.attrs(nid))
        self.graphs[-1].node(nid, label=_text(label), **attrs)
        self.node_shape[nid] = shape
        return nid

    def edge(self, a: str, b: str, **extra) -> str:
        """An edge labelled with the shape ``a`` produces; returns ``b`` to chain on from."""
        self.edges.append([a, b, {"label": shape_text(self.node_shape[a]), **extra}])
        return b

    @contextmanager
    def cluster(self, cid: str, label: str, bottom: bool = False):
        """Nodes created inside the ``with`` land in the cluster (a stage, a block, a head).
        Titles sit at the left, clear of the edges that enter mid-box; an open block's title
        sits at its bottom, as its branches' edges fan out from the top."""
        with self.graphs[-1].subgraph(name=f"cluster_{cid}") as sub:
            sub.attr(label=_text(label), labeljust="l", labelloc="b" if bottom else "t")
            self.graphs.append(sub)
            try:
                yield
            finally:
                self.graphs.pop()

    def runs(self, stage: Node) -> list[list[Node]]:
        """Consecutive identical blocks grouped; a block an aux head taps ends its group."""
        groups, prev = [], None
        for block in stage.children:
            sig = (block.entry, block.in_shape, block.out_shape)
            if self.collapse and groups and sig == prev:
                groups[-1].append(block)
            else:
                groups.append([block])
            prev = None if block.name in self.trace.aux_taps else sig
        return groups

    def block_label(self, stage: Node, run: list[Node], title: str | None = None) -> tuple[str, str]:
        m, n = run[0], len(run)
        first = m.name.rpartition(".")[2]
        times = f"\nx{n}" if n > 1 else ""
        if not _is_block(m):
            label, style = layer_label(m)
            return (f"{title}\n{label}" if title else label) + times, style
        if title is None:
            title = stage.name if first.isdigit() else first
            if n > 1 and not first.isdigit():
                title = f"{first} .. {run[-1].name.rpartition('.')[2]}"
        kind = m.info.kind or "block"
        kind = _("parallel branches") if kind == "stem" else kind  # a small concat block in a stem
        if m.op == "residual" and m.entry.expand:  # Inception-ResNet's scaled add
            kind += f", + x{m.entry.scale:g}" + ("" if m.entry.act else ", " + _("no ReLU"))
        return f"{title}\n{kind}{times}", "block"

    def walk(self, m: Node, src: str) -> str:
        """Draw ``m`` layer by layer, fed by node ``src``; returns the node of its output."""
        if _is_block(m):
            name, block, block_input = m.name, m.entry, src
            parts = {c.name.rpartition(".")[2]: c for c in m.children}
            if "pre" in parts:  # pre-activation: the branches and a projection read it
                src = self.walk(parts["pre"], src)
            ends = [self.walk(branch, src) for branch in _branches(m)]
            if len(ends) == 1 and m.op == "residual":  # a ResNet's bottleneck: nothing to join
                out = ends[0]
            else:
                branches = _branches(m)
                shape = (sum(b.out_shape[0] for b in branches), *branches[0].out_shape[1:])
                out = self.node(f"{name}.concat", f"concat {shape[0]}", shape, "join")
                for end in ends:
                    self.edge(end, out)
            if m.op != "residual":
                return out
            scale = f" x{block.scale:g}" if block.expand or block.scale != 1.0 else ""
            add = self.node(f"{name}.add", f"+{scale}", m.out_shape, "join")
            self.edge(self.walk(parts["up"], out) if "up" in parts else out, add)
            if "shortcut" in parts:  # a projection
                self.edge(self.walk(parts["shortcut"], src), add)
            else:  # the identity
                self.edge(block_input, add, color="#777777", fontcolor="#777777")
            if not block.act:  # the released networks' last block; every pre-activation block
                return add
            return self.edge(add, self.node(f"{name}.relu", "ReLU", m.out_shape))
        if not m.leaf and m.children:  # branches, heads
            for child in m.children:
                src = self.walk(child, src)
            return src
        if m.op == "flatten":
            return src
        label, style = layer_label(m)
        return self.edge(src, self.node(m.name, label, m.out_shape, style))

    def part(self, m: Node, src: str, style: str) -> str:
        """A head: layer by layer at layer depth (or expanded), else one node of its layers."""
        nid = m.name
        if self.depth == "layer" if self.expanded is None else nid in self.expanded:
            return self.walk(m, src)
        label = "\n".join(layer_label(leaf)[0] for leaf in _leaves(m))
        if self.expanded is not None:
            label = f"{nid}\n{label}"
        return self.edge(src, self.node(nid, label, m.out_shape, style))

    def stage(self, stage: Node, src: str, taps: dict) -> str:
        runs = self.runs(stage)
        if self.depth == "stage":
            what = _("{n} layers") if stage.name == "stem" else _("{n} blocks")
            label, style = self.block_label(stage, runs[0]) if len(runs) == 1 else \
                (what.format(n=len(stage.children)), "block")
            src = self.edge(src, self.node(stage.name, label, stage.out_shape, style))
            taps.update({b.name: src for b in stage.children})
            return src
        for run in runs:
            block = run[0]
            if self.depth == "block" or not _is_block(block):
                label, style = self.block_label(stage, run)
                src = self.edge(src, self.node(block.name, label, block.out_shape, style))
            else:  # a run of identical blocks is drawn once, its cluster marked "xN"
                with self.cluster(block.name, self.block_label(stage, run)[0]):
                    src = self.walk(block, src)
            taps[run[-1].name] = src
        return src

    def explorer_stage(self, stage: Node, src: str, taps: dict) -> str:
        """The explorer's view of one stage: a node, or (expanded) its blocks, each a node or
        (expanded) its layers. A stage of one block opens straight into that block's layers."""
        children = stage.children
        if stage.name not in self.expanded:
            runs = self.runs(stage)
            if len(runs) == 1:
                label, style = self.block_label(stage, runs[0], title=stage.name)
            else:
                what = _("{n} layers") if stage.name == "stem" else _("{n} blocks")
                label, style = f"{stage.name}\n" + what.format(n=len(children)), "block"
            figure = stage.info.figure
            label += f"\n{figure}" if figure and figure not in label else ""
            src = self.edge(src, self.node(stage.name, label, stage.out_shape, style))
            taps.update({b.name: src for b in children})
            return src
        fans_out = len(children) == 1 and _is_block(children[0])
        with self.cluster(stage.name, _titled(stage.name, stage), bottom=fans_out):
            for block in children:
                bid = block.name
                if _is_block(block) and len(children) == 1:
                    src = self.walk(block, src)
                elif _is_block(block) and bid in self.expanded:
                    with self.cluster(bid, self.block_label(stage, [block], bid)[0], bottom=True):
                        src = self.walk(block, src)
                else:
                    label, style = self.block_label(stage, [block], bid)
                    src = self.edge(src, self.node(bid, label, block.out_shape, style))
                taps[bid] = src
        return src

    def draw(self, variant: str, size: int) -> str:
        trace, taps = self.trace, {}
        title = _("{title} ({layout} layout), {size}x{size} input").format(
            title=trace.spec.title or variant, layout=_(trace.spec.layout), size=size)
        if self.colours.lo is not None:
            lo, hi = (value_text(v, self.colours.overlay) for v in (self.colours.lo, self.colours.hi))
            what = _(OVERLAYS.get(self.colours.overlay, N_("value")))
            title += "\n" + _("colour: {what}, {lo} (light) to {hi} (dark), log scale").format(
                what=what, lo=lo, hi=hi)
        node_pt, edge_pt, title_pt = self.fonts
        root = graphviz.Digraph(variant)
        # a font with Hangul (fontconfig falls back to it for Latin too): Korean labels are drawn
        root.attr("graph", rankdir="TB", label=_text(title), labelloc="t", fontname=CJK_FONT,
                  fontsize=str(title_pt), nodesep="0.25", ranksep="0.3")
        root.attr("node", shape="box", style="rounded,filled", fontname=CJK_FONT,
                  fontsize=str(node_pt), height="0.3")
        root.attr("edge", fontname=CJK_FONT, fontsize=str(edge_pt), arrowsize="0.6")
        self.graphs = [root]
        src = self.node("input", _("input"), trace.root.in_shape)
        for stage in (n for n in trace.root.children if n.op == "stage"):
            if self.expanded is not None:
                src = self.explorer_stage(stage, src, taps)
                continue
            with self.cluster(stage.name, _titled(stage.name, stage)):
                src = self.stage(stage, src, taps)
        if trace.spec.head.layers:  # a block drawn alone (the design bench) has no head
            with self.cluster("head", "classifier head"):
                self.part(trace.nodes["head"], src, "head")
        for tap, aux_name in trace.aux_taps.items():
            aux = trace.nodes[aux_name]
            with self.cluster(aux_name, _titled(f"auxiliary classifier ({aux_name})", aux)):
                first = len(self.edges)
                self.part(aux, taps[tap], "aux")
                self.edges[first][2]["style"] = "dashed"  # a side branch, not the main path
        for a, b, attrs in self.edges:
            root.edge(a, b, **attrs)
        return root.source
