"""A network as data: ``NetSpec`` = stages -> blocks -> branches -> layers, torch-free and immutable.

The schema (``NetSpec.to_dict()`` is plain JSON; ``NetSpec.from_dict`` reads it back and checks
it, raising a ``ConfigError`` that names the place: stage, block, branch, layer):

- a layer states its op and its output channels only (input channels follow from the walk):
  ``{"op": "conv", "out": 64, "kernel": 3 | [1, 7], "stride": 1 | [h, w], "padding": 1 | [0, 3]}``
  (with ``"bn"``, ``"bias"``, ``"act"``, ``"eps"`` where they differ from the network's
  ``defaults``); ``{"op": "maxpool" | "avgpool", "kernel", "stride", "padding"}`` (with
  ``"ceil_mode"``, ``"count_include_pad"`` where needed); the heads' ``adaptive_avgpool``,
  ``flatten``, ``dropout``, ``linear``, ``bn1d``, ``relu``; GoogLeNet's ``lrn``; and a nested
  ``{"op": "concat", "branches": {...}}`` inside a branch (the 1x3 | 3x1 split);
- a block: ``{"op": "concat", "branches": {"1x1": [layer, ...], ...}}`` or
  ``{"op": "residual", "branches": {...}, "scale": 0.17}`` (the linear 1x1 expansion back to
  the input's channels is implied; ``"act": false`` drops the ReLU after the add), with
  ``"kind"``, ``"figure"``, ``"idea"``; a stem's plain layers are blocks too. A ResNet's
  bottleneck is a residual block with ``"expand": false`` (its branch ends at the output's
  channels), ``"shortcut": [layer, ...]`` (a projection; none: the identity) and, for the
  pre-activation ResNet, ``"pre": [layer, ...]`` (BN -> ReLU before the branches; a projection
  shortcut reads its output, the identity reads the block's input, as He et al. 2016b do);
- a stage: ``{"kind", "figure", "idea", "blocks": {name: block}}``; the head and each auxiliary
  head (which reads the output of the block named by ``"tap"``): ``{"layers": {name: layer}}``.

Names are the modules' qualified names (``inception_a.0.branches.3x3dbl.1``), so checkpoints,
graph ids, URLs and tests read the same names whichever way a network was made.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from explorer.core.i18n import N_, _
from explorer.spec import ops
from explorer.spec.errors import ConfigError, placed

FORMAT = "inception-explorer/netspec"
VERSION = 1


@dataclass(frozen=True)
class Info:
    """What a block is in the paper: its kind ("inception", "reduction", "residual", "stem",
    "stage", "split", "aux", "head"), the figure or table that draws it, and its idea. It
    never changes what the block computes."""

    kind: str = ""
    figure: str = ""
    idea: str = ""

    def to_dict(self) -> dict:
        return {k: v for k, v in (("kind", self.kind), ("figure", self.figure),
                                  ("idea", self.idea)) if v}


NO_INFO = Info()


class Layer:
    """One op with its arguments (only those that differ from the op's defaults are kept)."""

    __slots__ = ("op", "args", "_hash")

    def __init__(self, op: str, **args):
        rule = ops.rule(op)
        args = {k: ops.tupled(v) for k, v in args.items() if v is not None}
        rule.check(args)
        object.__setattr__(self, "op", op)
        object.__setattr__(self, "args", tuple(sorted(args.items())))
        object.__setattr__(self, "_hash", hash((op, self.args)))

    def __setattr__(self, name, value):
        raise AttributeError("a Layer is immutable")

    def __reduce__(self):  # pickle and copy through the constructor (the slots are read-only)
        return _layer, (self.op, dict(self.args))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def get(self, key: str, default=None):
        for k, v in self.args:
            if k == key:
                return v
        return default

    def __getitem__(self, key: str):
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def replace(self, **changes) -> Layer:
        return Layer(self.op, **{**dict(self.args), **changes})

    def __eq__(self, other):
        return isinstance(other, Layer) and (self.op, self.args) == (other.op, other.args)

    def __hash__(self):
        return self._hash

    def __repr__(self):
        return f"Layer({self.op!r}, " + ", ".join(f"{k}={v!r}" for k, v in self.args) + ")"

    def to_dict(self) -> dict:
        return {"op": self.op, **{k: ops.listed(v) for k, v in self.args}}


_MISSING = object()


def _layer(op: str, args: dict) -> Layer:
    return Layer(op, **args)


@dataclass(frozen=True)
class Block:
    """Parallel branches over one input, joined by channel ``concat``, or a ``residual`` block:
    (``pre`` layers ->) branches -> concat (-> linear 1x1 expansion unless ``expand`` is False)
    -> x ``scale`` -> + shortcut (-> ReLU unless ``act`` is False). The shortcut is the input
    itself, or the ``shortcut`` layers (a projection) applied to the ``pre`` layers' output.
    A branch is a tuple of layers (or nested concats)."""

    op: str                                       # "concat" or "residual"
    branches: tuple[tuple[str, tuple], ...]
    info: Info = NO_INFO
    scale: float = 1.0
    act: bool = True
    expand: bool = True                           # Inception-ResNet's linear 1x1 expansion
    shortcut: tuple = ()                          # () = identity; else a projection's layers
    pre: tuple = ()                               # pre-activation layers (BN -> ReLU)

    def branch(self, name: str) -> tuple:
        return dict(self.branches)[name]

    def to_dict(self) -> dict:
        out = {"op": self.op, **self.info.to_dict(),
               "branches": {n: [x.to_dict() for x in b] for n, b in self.branches}}
        if self.op == "residual":
            out["scale"] = self.scale
            if not self.act:
                out["act"] = False
            if not self.expand:
                out["expand"] = False
            if self.shortcut:
                out["shortcut"] = [x.to_dict() for x in self.shortcut]
            if self.pre:
                out["pre"] = [x.to_dict() for x in self.pre]
        return out


@dataclass(frozen=True)
class Stage:
    name: str
    blocks: tuple[tuple[str, Layer | Block], ...]
    info: Info = NO_INFO

    def to_dict(self) -> dict:
        return {**self.info.to_dict(), "blocks": {n: b.to_dict() for n, b in self.blocks}}


@dataclass(frozen=True)
class Head:
    """The classifier head, or an auxiliary head (``tap``: the block whose output it reads)."""

    name: str
    layers: tuple[tuple[str, Layer], ...]
    info: Info = NO_INFO
    tap: str | None = None

    def to_dict(self) -> dict:
        out = {**self.info.to_dict(), "layers": {n: x.to_dict() for n, x in self.layers}}
        if self.tap is not None:
            out = {"tap": self.tap, **out}
        return out


@dataclass(frozen=True)
class NetSpec:
    """A whole network: its stages in order, its classifier head and its auxiliary heads.
    ``defaults`` are the convolutions' own (``bn``: batch norm after each conv; ``eps``).
    ``variant``, ``layout`` and ``config`` say where it came from (for titles and files)."""

    stages: tuple[Stage, ...]
    head: Head
    aux: tuple[Head, ...] = ()
    input_size: int = 224
    in_channels: int = 3
    defaults: tuple[tuple[str, object], ...] = (("bn", True), ("eps", 1e-3))
    variant: str = "custom"
    layout: str = ""
    title: str = ""
    config: tuple[tuple[str, object], ...] = field(default=(), compare=False)

    def default(self, key: str):
        return dict(self.defaults)[key]

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    def block(self, name: str) -> Layer | Block:
        """A block by its qualified name (``inception_a.mixed_5b``)."""
        stage_name, _dot, block_name = name.partition(".")
        try:
            return dict(self.stage(stage_name).blocks)[block_name]
        except KeyError:
            raise ConfigError(_("{variant} has no block {name}; its blocks are named stage.block, "
                                "e.g. {examples}").format(
                variant=self.variant, name=repr(name), examples=", ".join(
                    f"{s.name}.{s.blocks[0][0]}" for s in self.stages[:3]))) from None

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "variant": self.variant,
                "layout": self.layout, "title": self.title, "input_size": self.input_size,
                "in_channels": self.in_channels, "defaults": dict(self.defaults),
                "config": {k: ops.listed(v) for k, v in self.config},
                "stages": {s.name: s.to_dict() for s in self.stages},
                "aux": {a.name: a.to_dict() for a in self.aux},
                "head": self.head.to_dict()}

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @staticmethod
    def from_dict(d) -> NetSpec:
        return _Reader().net(d)

    @staticmethod
    def from_json(text: str) -> NetSpec:
        try:
            d = json.loads(text)
        except ValueError as err:
            raise ConfigError(_("not a NetSpec: the file is not JSON ({error})").format(
                error=err)) from None
        return NetSpec.from_dict(d)


# -- reading plain JSON back, every value checked, every error placed ---------------------------

class _Reader:
    def __init__(self):
        self.where: list = []  # (kind, name) pairs: errors.place

    def fail(self, message: str):
        raise ConfigError(placed(self.where, message))

    def mapping(self, d, what: str) -> Mapping:
        """``d`` when it is a JSON object; ``what`` names it ("a stage", marked with N_, or a
        key as written, "'stages'")."""
        if not isinstance(d, Mapping):
            self.fail(_("{what} must be a JSON object, got {type}").format(
                what=_(what), type=type(d).__name__))
        return d

    def info(self, d: Mapping) -> Info:
        values = []
        for key in ("kind", "figure", "idea"):
            v = d.get(key, "")
            if not isinstance(v, str):
                self.fail(_("{key} must be text, got {got}").format(key=repr(key), got=repr(v)))
            values.append(v)
        return Info(*values)

    def name(self, n) -> str:
        if not isinstance(n, str) or not n or "." in n or n != n.strip():
            self.fail(_("name {name} must be non-empty text without dots or spaces at its ends")
                      .format(name=repr(n)))
        return n

    def net(self, d) -> NetSpec:
        d = self.mapping(d, N_("a NetSpec"))
        if d.get("format", FORMAT) != FORMAT:
            self.fail(_("not a NetSpec (format {format}, expected {expected})").format(
                format=repr(d.get("format")), expected=repr(FORMAT)))
        if d.get("version", VERSION) != VERSION:
            self.fail(_("NetSpec version {version} is not supported (this is {supported})").format(
                version=repr(d.get("version")), supported=VERSION))
        unknown = set(d) - {"format", "version", "variant", "layout", "title", "input_size",
                            "in_channels", "defaults", "config", "stages", "aux", "head"}
        if unknown:
            self.fail(_("unknown key(s) {keys}").format(keys=", ".join(sorted(unknown))))
        stages = self.mapping(d.get("stages"), "'stages'")
        if not stages:
            self.fail(_("a network needs at least one stage"))
        out_stages = []
        for name, s in stages.items():
            self.where.append(("stage", name))
            self.name(name)
            s = self.mapping(s, N_("a stage"))
            blocks = self.mapping(s.get("blocks"), "'blocks'")
            if not blocks:
                self.fail(_("a stage needs at least one block"))
            out_blocks = []
            for bname, b in blocks.items():
                self.where.append(("block", bname))
                self.name(bname)
                out_blocks.append((bname, self.block_or_layer(b)))
                self.where.pop()
            out_stages.append(Stage(name, tuple(out_blocks), self.info(s)))
            self.where.pop()
        defaults = self.mapping(d.get("defaults", {"bn": True, "eps": 1e-3}), "'defaults'")
        if set(defaults) - {"bn", "eps"}:
            self.fail(_("'defaults' takes 'bn' and 'eps' only"))
        bn, eps = defaults.get("bn", True), defaults.get("eps", 1e-3)
        if not isinstance(bn, bool) or not _number(eps) or not 0 < eps < 1:
            self.fail(_("'defaults' must be bn: true|false and 0 < eps < 1, got {got}").format(
                got=dict(defaults)))
        size, channels = d.get("input_size", 224), d.get("in_channels", 3)
        for key, v in (("input_size", size), ("in_channels", channels)):
            if not _integer(v) or v < 1:
                self.fail(_("{key} must be a positive integer, got {got}").format(key=key,
                                                                                 got=repr(v)))
        self.where.append(("head", ""))
        head = self.head("head", d.get("head"))
        self.where.pop()
        aux = []
        for name, a in self.mapping(d.get("aux", {}), "'aux'").items():
            self.where.append(("aux", name))
            aux.append(self.head(self.name(name), a, tapped=True))
            self.where.pop()
        config = self.mapping(d.get("config", {}), "'config'")
        texts = [d.get(k, "") for k in ("variant", "layout", "title")]
        if not all(isinstance(t, str) for t in texts):
            self.fail(_("variant, layout and title must be text"))
        return NetSpec(tuple(out_stages), head, tuple(aux), size, channels,
                       (("bn", bn), ("eps", float(eps))), texts[0] or "custom", texts[1],
                       texts[2], tuple((k, ops.tupled(v)) for k, v in config.items()))

    def head(self, name: str, d, tapped: bool = False) -> Head:
        d = self.mapping(d, N_("a head"))
        layers = self.mapping(d.get("layers"), "'layers'")
        out = []
        for lname, x in layers.items():
            self.where.append(("layer", lname))
            self.name(lname)
            out.append((lname, self.layer(x)))
            self.where.pop()
        tap = d.get("tap")
        if tapped and not isinstance(tap, str):
            self.fail(_("an auxiliary head needs 'tap': the block whose output it reads"))
        return Head(name, tuple(out), self.info(d), tap if tapped else None)

    def block_or_layer(self, d):
        d = self.mapping(d, N_("a block"))
        if d.get("op") in ("concat", "residual"):
            return self.block(d)
        return self.layer(d)

    def block(self, d) -> Block:
        d = self.mapping(d, N_("a block"))
        op = d.get("op")
        allowed = {"op", "branches", "kind", "figure", "idea"} | (
            {"scale", "act", "expand", "shortcut", "pre"} if op == "residual" else set())
        if set(d) - allowed:
            self.fail(_("unknown key(s) {keys} in a {op} block").format(
                keys=", ".join(sorted(set(d) - allowed)), op=op))
        branches = self.mapping(d.get("branches"), "'branches'")
        if not branches:
            self.fail(_("a {op} block needs at least one branch").format(op=op))
        out = []
        for bname, layers in branches.items():
            self.where.append(("branch", bname))
            self.name(bname)
            if not isinstance(layers, list) or not layers:
                self.fail(_("a branch is a non-empty list of layers, got {got}").format(
                    got=repr(layers)))
            items = []
            for i, x in enumerate(layers):
                self.where.append(("layer", i))
                x = self.mapping(x, N_("a layer"))
                if x.get("op") == "residual":
                    self.fail(_("a residual block cannot sit inside a branch"))
                items.append(self.block(x) if x.get("op") == "concat" else self.layer(x))
                self.where.pop()
            out.append((bname, tuple(items)))
            self.where.pop()
        scale, act, expand = d.get("scale", 1.0), d.get("act", True), d.get("expand", True)
        if op == "residual" and (not _number(scale) or not 0 < scale <= 10):
            self.fail(_("scale must be a number in (0, 10], got {got}").format(got=repr(scale)))
        for key, v in (("act", act), ("expand", expand)):
            if not isinstance(v, bool):
                self.fail(_("{key} must be true or false, got {got}").format(key=key, got=repr(v)))
        shortcut, pre = (self.layers(d.get(key, []), key) for key in ("shortcut", "pre"))
        return Block(op, tuple(out), self.info(d), float(scale), act, expand, shortcut, pre)

    def layers(self, items, what: str) -> tuple:
        """A block's ``shortcut`` or ``pre``: a list of plain layers (empty: none)."""
        if not isinstance(items, list):
            self.fail(_("{what} must be a list of layers, got {got}").format(
                what=what, got=repr(items)))
        out = []
        for i, x in enumerate(items):
            self.where.append(f"{what} layer {i}")
            out.append(self.layer(x))
            self.where.pop()
        return tuple(out)

    def layer(self, d) -> Layer:
        d = self.mapping(d, N_("a layer"))
        op = d.get("op")
        if op in ("concat", "residual"):
            self.fail(_("a {op} block is not a layer here").format(op=op))
        if not isinstance(op, str) or op not in ops.OPS:
            self.fail(_("unknown op {op}; the ops are: {ops}").format(
                op=repr(op), ops=", ".join(ops.OPS) + ", concat, residual"))
        try:
            return Layer(op, **{k: v for k, v in d.items() if k != "op"})
        except (ConfigError, TypeError) as err:
            self.fail(str(err))


def _integer(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
