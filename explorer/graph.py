"""Draw a variant as Graphviz DOT that reads like the papers' figures, and render it.

``to_dot`` builds the network on the meta device (no memory, no weights), runs one forward pass
with hooks to learn every module's output shape, and walks the block vocabulary (``ConvBN``,
``Concat``, ``Residual``, heads). Stages become clusters labelled with their paper figure; edges
carry "C x H x W" shapes.
"""

from __future__ import annotations

import shutil
import subprocess
from contextlib import contextmanager
from functools import lru_cache

import torch
from torch import nn

from .variants import VARIANTS, ConfigError, build
from .variants.blocks import Concat, ConvBN, Residual, meta_of

DEPTHS = ("stage", "block", "layer")
FORMATS = ("svg", "png")
MISSING = ("Graphviz's `dot` program is not installed; install it (e.g. `apt-get install "
           "graphviz`, or see https://graphviz.org/download/) or download the DOT source instead")
FILL = {"conv": "#dbe9f6", "pool": "#fdebd0", "join": "#eeeeee", "block": "#dbe9f6",
        "head": "#e2f0d9", "aux": "#f4f4f4", "layer": "#ffffff"}


class GraphvizMissing(RuntimeError):
    """The ``dot`` binary is not on PATH; the DOT source itself is still available."""


def to_dot(variant: str, *, depth: str = "block", collapse: bool = True, **config) -> str:
    """Graphviz DOT for ``variant`` at ``depth``:

    - "stage": one node per stage;
    - "block": one node per block (stem layers count as blocks);
    - "layer": each block's parallel branches side by side, joined by a concat node; residual
      blocks add the linear 1x1 filter expansion, the scaled add with its identity shortcut and
      the ReLU.

    ``collapse`` draws a run of identical consecutive blocks once, marked "xN". ``config`` takes
    build's options (layout, width, aux_logits, input_size, ...); invalid ones raise ConfigError.
    """
    if depth not in DEPTHS:
        raise ConfigError(f"unknown depth {depth!r}; choose one of: {', '.join(DEPTHS)}")
    if {"device", "weights"} & set(config):  # a drawing needs shapes only: always meta, no weights
        raise ConfigError("to_dot takes no device or weights: it draws a meta-device build")
    key = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in config.items()))
    try:
        hash(key)
    except TypeError:  # an odd value: let build() reject it with its own message, uncached
        return _to_dot.__wrapped__(variant, depth, bool(collapse), key)
    return _to_dot(variant, depth, bool(collapse), key)


@lru_cache(maxsize=64)
def _to_dot(variant: str, depth: str, collapse: bool, config: tuple) -> str:
    model = build(variant, device="meta", **dict(config))
    size = model.config.input_size or VARIANTS[variant].native_input_size
    return _Drawer(model, _shapes(model, size), depth, collapse).draw(variant, size)


def render(dot_source: str, fmt: str = "svg") -> bytes:
    """Lay out ``dot_source`` with Graphviz's ``dot`` and return the SVG or PNG bytes."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizMissing(MISSING)
    done = subprocess.run([dot, f"-T{fmt}"], input=dot_source.encode(), capture_output=True,
                          timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"dot failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def _shapes(model: nn.Module, size: int) -> dict[int, tuple]:
    """Output shape (without the batch) of every module called, keyed by id(module)."""
    shapes = {}

    def hook(module, inputs, output):
        if isinstance(output, torch.Tensor):
            shapes[id(module)] = tuple(output.shape[1:])

    for m in model.modules():  # the model is ours alone and thrown away: hooks may stay
        m.register_forward_hook(hook)
    # Aux heads run in training mode only; a batch of 2 keeps train-mode BatchNorm1d happy.
    model.train(model.config.aux_logits)
    with torch.no_grad():
        model(torch.empty(2, 3, size, size, device="meta"))
    return shapes


def _quote(text: str) -> str:
    """A DOT double-quoted string: safe for any id or label (newlines become line breaks)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _shape_text(shape: tuple) -> str:
    return " x ".join(map(str, shape))


def _titled(name: str, module: nn.Module) -> str:
    figure = meta_of(module).get("figure")
    return f"{name}\n{figure}" if figure else name


def _pair(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def layer_label(m: nn.Module) -> tuple[str, str]:
    """(label, style) of one layer, in the papers' words: "1x7 conv, 192", "3x3 max pool /2"."""
    conv = m.conv if isinstance(m, ConvBN) else m
    if isinstance(conv, nn.Conv2d):
        (kh, kw), (s, _) = conv.kernel_size, conv.stride
        text = f"{kh}x{kw} conv, {conv.out_channels}" + (f" /{s}" if s > 1 else "")
        # a bare Conv2d in our blocks is Inception-ResNet's filter expansion: no BN, no ReLU
        return text + (" (linear)" if conv is m else ""), "conv"
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        (k, _), (s, _) = _pair(m.kernel_size), _pair(m.stride)
        kind = "max" if isinstance(m, nn.MaxPool2d) else "avg"
        return f"{k}x{k} {kind} pool" + (f" /{s}" if s > 1 else ""), "pool"
    if isinstance(m, nn.AdaptiveAvgPool2d):
        o = _pair(m.output_size)
        return ("global avg pool" if o == (1, 1) else f"avg pool to {o[0]}x{o[1]}"), "pool"
    if isinstance(m, nn.Linear):
        return f"fc {m.out_features}", "head"
    if isinstance(m, nn.Dropout):
        return f"dropout {m.p:g}", "head"
    names = {nn.LocalResponseNorm: "LRN", nn.BatchNorm1d: "batch norm", nn.ReLU: "ReLU"}
    return names.get(type(m), type(m).__name__), "layer"


def _leaves(m: nn.Module) -> list[nn.Module]:
    """The layers of a head, in order (Flatten only reshapes: not worth a node)."""
    if isinstance(m, ConvBN) or not list(m.children()):
        return [] if isinstance(m, nn.Flatten) else [m]
    return [leaf for child in m.children() for leaf in _leaves(child)]


class _Drawer:
    def __init__(self, model, shapes, depth, collapse):
        self.model, self.shapes, self.depth, self.collapse = model, shapes, depth, collapse
        self.names = {id(m): name for name, m in model.named_modules()}
        self.node_shape: dict[str, tuple] = {}
        self.body: list[str] = []
        # edges go at the root: an edge written inside a cluster pulls its nodes into it
        self.edges: list[list[str]] = []
        self.indent = "  "

    def node(self, nid: str, label: str, shape: tuple, style: str = "layer") -> str:
        attrs = f"label={_quote(label)}, fillcolor={_quote(FILL[style])}"
        if style == "join":
            attrs += ", shape=ellipse"
        self.body.append(f"{self.indent}{_quote(nid)} [{attrs}];")
        self.node_shape[nid] = shape
        return nid

    def edge(self, a: str, b: str, extra: str = "") -> str:
        """An edge labelled with the shape ``a`` produces; returns ``b`` to chain on from."""
        self.edges.append([a, b, f"label={_quote(_shape_text(self.node_shape[a]))}{extra}"])
        return b

    @contextmanager
    def cluster(self, cid: str, label: str):
        """Nodes created inside the ``with`` land in the cluster (a stage, a block, a head)."""
        self.body.append(f"{self.indent}subgraph {_quote('cluster_' + cid)} {{")
        self.indent += "  "
        self.body.append(f"{self.indent}label={_quote(label)};")
        yield
        self.indent = self.indent[:-2]
        self.body.append(f"{self.indent}}}")

    def runs(self, stage_name: str, stage: nn.Sequential) -> list[list[tuple[str, nn.Module]]]:
        """Consecutive identical blocks grouped; a block an aux head taps ends its group."""
        groups, prev = [], None
        for name, block in stage.named_children():
            sig = (repr(block), self.shapes.get(id(block)))
            if self.collapse and groups and sig == prev:
                groups[-1].append((name, block))
            else:
                groups.append([(name, block)])
            prev = None if f"{stage_name}.{name}" in self.model.aux_taps else sig
        return groups

    def block_label(self, stage_name: str, run) -> tuple[str, str]:
        (first, m), n = run[0], len(run)
        times = f"\nx{n}" if n > 1 else ""
        if not isinstance(m, Concat):
            label, style = layer_label(m)
            return label + times, style
        title = stage_name if first.isdigit() else first
        if n > 1 and not first.isdigit():
            title = f"{first} .. {run[-1][0]}"
        kind = meta_of(m).get("kind", "block")
        kind = "parallel branches" if kind == "stem" else kind  # a small concat block in a stem
        if isinstance(m, Residual):
            kind += f", + x{m.scale:g}" + ("" if m.act is not None else ", no ReLU")
        return f"{title}\n{kind}{times}", "block"

    def walk(self, m: nn.Module, src: str) -> str:
        """Draw ``m`` layer by layer, fed by node ``src``; returns the node of its output."""
        if isinstance(m, Concat):
            name = self.names[id(m)]
            ends = [self.walk(branch, src) for branch in m.branches.values()]
            shape = self.shapes[id(m.up if isinstance(m, Residual) else m)]
            if isinstance(m, Residual):  # the concat's shape is the expansion's input
                shape = (sum(self.node_shape[e][0] for e in ends),) + shape[1:]
            cat = self.node(f"{name}/concat", f"concat {shape[0]}", shape, "join")
            for end in ends:
                self.edge(end, cat)
            if not isinstance(m, Residual):
                return cat
            add = self.node(f"{name}/add", f"+ x{m.scale:g}", self.shapes[id(m)], "join")
            self.edge(self.walk(m.up, cat), add)
            self.edge(src, add, ', color="#777777", fontcolor="#777777"')  # identity shortcut
            if m.act is None:  # the released networks' last block
                return add
            return self.edge(add, self.node(f"{name}/relu", "ReLU", self.shapes[id(m)]))
        if not isinstance(m, ConvBN) and list(m.children()):  # Sequential, heads
            for child in m.children():
                src = self.walk(child, src)
            return src
        if isinstance(m, nn.Flatten):
            return src
        label, style = layer_label(m)
        return self.edge(src, self.node(self.names[id(m)], label, self.shapes[id(m)], style))

    def part(self, nid: str, m: nn.Module, src: str, style: str) -> str:
        """A head: layer by layer at layer depth, else one node listing its layers."""
        if self.depth == "layer":
            return self.walk(m, src)
        label = "\n".join(layer_label(leaf)[0] for leaf in _leaves(m))
        return self.edge(src, self.node(nid, label, self.shapes[id(m)], style))

    def stage(self, stage_name: str, stage: nn.Sequential, src: str, taps: dict) -> str:
        runs = self.runs(stage_name, stage)
        if self.depth == "stage":
            what = "layers" if stage_name == "stem" else "blocks"
            label, style = self.block_label(stage_name, runs[0]) if len(runs) == 1 else \
                (f"{len(stage)} {what}", "block")
            src = self.edge(src, self.node(stage_name, label, self.shapes[id(stage[-1])], style))
            taps.update({f"{stage_name}.{name}": src for name, _ in stage.named_children()})
            return src
        for run in runs:
            (first, block), last = run[0], run[-1][0]
            if self.depth == "block" or not isinstance(block, Concat):
                label, style = self.block_label(stage_name, run)
                src = self.edge(src, self.node(f"{stage_name}.{first}", label,
                                               self.shapes[id(block)], style))
            else:  # a run of identical blocks is drawn once, its cluster marked "xN"
                with self.cluster(f"{stage_name}.{first}", self.block_label(stage_name, run)[0]):
                    src = self.walk(block, src)
            taps[f"{stage_name}.{last}"] = src
        return src

    def draw(self, variant: str, size: int) -> str:
        model, taps = self.model, {}
        src = self.node("input", "input", (3, size, size))
        for stage_name in model.stage_names:
            stage = getattr(model, stage_name)
            with self.cluster(stage_name, _titled(stage_name, stage)):
                src = self.stage(stage_name, stage, src, taps)
        with self.cluster("head", "classifier head"):
            self.part("head", model.head, src, "head")
        for tap, aux_name in model.aux_taps.items():
            aux = getattr(model, aux_name)
            with self.cluster(aux_name, _titled(f"auxiliary classifier ({aux_name})", aux)):
                first = len(self.edges)
                self.part(aux_name, aux, taps[tap], "aux")
                self.edges[first][2] += ", style=dashed"  # a side branch, not the main path
        title = f"{VARIANTS[variant].title} ({model.layout} layout), {size}x{size} input"
        return "\n".join([
            f"digraph {_quote(variant)} {{",
            f'  graph [rankdir=TB, label={_quote(title)}, labelloc=t, fontname="Helvetica", '
            'fontsize=12, nodesep=0.2, ranksep=0.3];',
            '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, '
            'height=0.3];',
            '  edge [fontname="Helvetica", fontsize=8, arrowsize=0.6];',
            *self.body, *(f"  {_quote(a)} -> {_quote(b)} [{attrs}];" for a, b, attrs in self.edges),
            "}", ""])
