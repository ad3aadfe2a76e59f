"""The design bench, torch-free: open a block of a network, edit it as a student would, and see
what the edit costs, beside the original, in the block and in the whole network.

- ``open_block(spec, name)``: the block at ``name`` as an editable design (a stem's plain layer
  becomes a one-branch block with the same figures); ``empty_block()`` starts from nothing.
- edits, each returning a new block (a design is immutable): ``add_branch``, ``remove_branch``,
  ``rename_branch``, ``add_layer``, ``remove_layer``, ``change_layer``, ``factorize`` (5x5 ->
  two 3x3; n x n -> 1 x n then n x 1) and ``unfactorize`` (its undo), ``set_residual``.
- ``bench(spec, name, design, whole_stage=False)``: the network with the design placed (at the
  block, or every block of its stage), walked once; the block's own figures (output shape,
  params, MACs, receptive field in its input's pixels) and the network's totals, each beside
  the original's with the difference. An impossible design raises ``ConfigError`` /
  ``ShapeError`` naming the branch and layer.
- a design travels as a URL value (``encode`` / ``decode``: compact, URL-safe, checked on the
  way back), as JSON (the block schema) and as a Python snippet (``snippet``).
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from dataclasses import dataclass
from dataclasses import replace as dc_replace
from functools import lru_cache

from explorer.core.i18n import N_, _
from explorer.spec import ops
from explorer.spec.errors import ConfigError, place
from explorer.spec.netspec import Block, Head, Info, Layer, NetSpec, Stage
from explorer.spec.replace import as_block, replaced, targets
from explorer.spec.walk import walk
from explorer.variants import describe

POOLS = ("maxpool", "avgpool")
MAX_URL_CHARS = 6000          # a design link longer than this is refused before it is read
MAX_JSON_BYTES = 200_000      # nor may it unpack to more than this


# -- opening ---------------------------------------------------------------------------------

def open_block(spec: NetSpec, name: str) -> Block:
    """The block at ``name`` (stage.block) as an editable design."""
    if "." not in str(name):
        raise ConfigError(_("open one block (stage.block, e.g. {example}), not the stage {name}")
                          .format(example=f"{spec.stages[-1].name}.{spec.stages[-1].blocks[0][0]}",
                                  name=repr(name)))
    targets(spec, name)  # names the blocks there are when ``name`` is not one
    return editable(spec.block(name))


def editable(item) -> Block:
    """A Block as it is; a plain layer (a stem's) as a block of one branch (same figures)."""
    item = as_block(item)
    if isinstance(item, Layer):
        return Block("concat", (("main", (item,)),), Info("layer", "", N_("a single layer")))
    return item


def empty_block(out: int = 64) -> Block:
    """A block to start from: one branch, one 1x1 conv."""
    return Block("concat", (("1x1", (Layer("conv", out=out, kernel=1),)),),
                 Info("inception", "", N_("designed from an empty block")))


def bottleneck_block(channels: int) -> Block:
    """A ResNet bottleneck to start from, for an input of ``channels``: 1x1 conv to a quarter
    of them, 3x3 conv, 1x1 conv back (no ReLU), added onto the input, then ReLU (He et al. 2015,
    Figure 5, right)."""
    mid = max(1, channels // 4)
    return Block("residual", (("bottleneck", (
        Layer("conv", out=mid, kernel=1), Layer("conv", out=mid, kernel=3, padding=1),
        Layer("conv", out=channels, kernel=1, act=False))),),
        Info("bottleneck", "ResNet paper, Figure 5 (right)", "designed from a ResNet bottleneck"),
        expand=False)


def block_input_channels(variant: str, layout: str, name: str) -> int:
    """The channels a block of ``variant`` reads (its place's input)."""
    return walk(describe(variant, layout), fields=False).nodes[name].in_shape[0]


# -- edits -----------------------------------------------------------------------------------

def _at(branch: str, index) -> str:
    """ "branch 3x3, layer 1", in the run's language."""
    return place([("branch", branch), ("layer", index)])


def _branches(block: Block) -> dict:
    return dict(block.branches)


def _with(block: Block, branches: dict) -> Block:
    return dc_replace(block, branches=tuple(branches.items()))


def _branch(block: Block, branch: str) -> tuple:
    b = _branches(block)
    if branch not in b:
        raise ConfigError(_("the block has no branch {branch}; its branches are: {branches}")
                          .format(branch=repr(branch), branches=", ".join(b)))
    return b[branch]


def _check_name(name) -> str:
    if not isinstance(name, str) or not name or "." in name or name != name.strip():
        raise ConfigError(_("a branch name is non-empty text without dots or spaces at its ends, "
                            "got {got}").format(got=repr(name)))
    return name


def add_branch(block: Block, name: str, layers=None) -> Block:
    """A new branch (default: one 1x1 conv to 32 channels) after the others."""
    b = _branches(block)
    if _check_name(name) in b:
        raise ConfigError(_("the block already has a branch {name}").format(name=repr(name)))
    b[name] = tuple(layers) if layers else (Layer("conv", out=32, kernel=1),)
    return _with(block, b)


def remove_branch(block: Block, name: str) -> Block:
    b = _branches(block)
    _branch(block, name)
    if len(b) == 1:
        raise ConfigError(_("branch {branch} is the block's only branch: a block needs at least "
                            "one").format(branch=name))
    del b[name]
    return _with(block, b)


def rename_branch(block: Block, old: str, new: str) -> Block:
    _branch(block, old)
    if _check_name(new) != old and new in _branches(block):
        raise ConfigError(_("the block already has a branch {name}").format(name=repr(new)))
    return dc_replace(block, branches=tuple(((new if n == old else n), ls)
                                            for n, ls in block.branches))


def _set_layers(block: Block, branch: str, layers: tuple) -> Block:
    b = _branches(block)
    b[branch] = tuple(layers)
    return _with(block, b)


def _index(layers: tuple, branch: str, index: int, extra: int = 0) -> int:
    if not isinstance(index, int) or not 0 <= index < len(layers) + extra:
        raise ConfigError(_("branch {branch} has layers 0..{last}, not {index}").format(
            branch=branch, last=len(layers) - 1, index=repr(index)))
    return index


def add_layer(block: Block, branch: str, index: int | None = None, layer: Layer | dict | None = None
              ) -> Block:
    """A layer inserted at ``index`` of ``branch`` (default: at its end; a 3x3 conv keeping the
    grid, with the channels of the layer before it)."""
    layers = _branch(block, branch)
    index = len(layers) if index is None else _index(layers, branch, index, extra=1)
    if layer is None:
        before = next((x for x in reversed(layers[:index]) if isinstance(x, Layer)
                       and x.get("out")), None)
        layer = Layer("conv", out=before["out"] if before else 64, kernel=3, padding=1)
    layer = as_block(layer, _at(branch, index))
    return _set_layers(block, branch, layers[:index] + (layer,) + layers[index:])


def remove_layer(block: Block, branch: str, index: int) -> Block:
    layers = _branch(block, branch)
    _index(layers, branch, index)
    if len(layers) == 1:
        raise ConfigError(_("{place} is the branch's only layer: remove the branch instead")
                          .format(place=_at(branch, index)))
    return _set_layers(block, branch, layers[:index] + layers[index + 1:])


def same_padding(kernel) -> tuple[int, int]:
    """The padding that keeps the grid at stride 1 (odd kernels)."""
    kh, kw = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    return (kh - 1) // 2, (kw - 1) // 2


def change_layer(block: Block, branch: str, index: int, op: str | None = None, **changes) -> Block:
    """Layer ``index`` of ``branch`` with ``changes`` (``kernel``, ``stride``, ``padding``,
    ``out``, ...); ``op`` switches between conv, maxpool and avgpool (a pool keeps no channels
    of its own). A value that is not allowed raises ConfigError naming branch and layer."""
    layers = _branch(block, branch)
    _index(layers, branch, index)
    old = layers[index]
    if not isinstance(old, Layer):
        raise ConfigError(_("{place} is a nested {op}: change its layers in the JSON, or remove "
                            "it").format(place=_at(branch, index), op=old.op))
    args = dict(old.args)
    new_op = op or old.op
    if new_op != old.op:
        keep = {"kernel", "stride", "padding"}
        args = {k: v for k, v in args.items() if k in keep}
        if new_op == "conv":
            args["out"] = changes.pop("out", None) or 64
    args.update({k: v for k, v in changes.items()})
    args = {k: v for k, v in _tidy(new_op, args).items() if v is not None}
    try:
        layer = Layer(new_op, **args)
    except (ConfigError, TypeError) as err:
        raise ConfigError(f"{_at(branch, index)}: {err}") from None
    return _set_layers(block, branch, layers[:index] + (layer,) + layers[index + 1:])


def _pair(v) -> tuple[int, int]:
    return v if isinstance(v, tuple) else (v, v)


def _tidy(op: str, args: dict) -> dict:
    """Arguments written as the variants write them: (a, a) as a, no padding 0, and no stride
    1 for a conv (a pool's stride defaults to its kernel, so it stays)."""
    args = dict(args)
    for key, none in (("kernel", None), ("stride", 1 if op == "conv" else None), ("padding", 0)):
        v = args.get(key)
        if isinstance(v, (tuple, list)) and len(v) == 2 and v[0] == v[1]:
            v = v[0]
        args[key] = None if v == none else v
    return args


def _new_conv(**args) -> Layer:
    return Layer("conv", **_tidy("conv", args))


pair = _pair


def layer_text(layer) -> str:
    """A layer in the papers' words ("1x7 conv, 192", "3x3 avg pool", "stride 1"); a nested
    concat by its branches."""
    if isinstance(layer, Layer):
        text = ops.label(layer)[0]
        if layer.op in POOLS:
            text += f" /{_pair(layer.get('stride', layer.get('kernel')))[0]}"
        pad = _pair(layer.get("padding", 0))
        return text + (f", pad {pad[0]}x{pad[1]}" if pad != (0, 0) else "")
    return f"{layer.op} of " + " | ".join(n for n, _ in layer.branches)


def free_name(names) -> str:
    """A branch name not yet taken: new, new2, new3, ..."""
    taken = set(names)
    return next(n for n in ("new", *(f"new{i}" for i in range(2, 1000))) if n not in taken)


def _conv(layer) -> bool:
    return isinstance(layer, Layer) and layer.op == "conv"


def factorize(block: Block, branch: str, index: int, how: str | None = None,
              mid: int | None = None) -> Block:
    """Replace the n x n conv at ``index`` of ``branch``:

    - ``how="3x3"`` (the default for 5x5): two 3x3 convs (Rethinking, Figure 5; 72 % of the
      5x5's MACs at equal channels);
    - ``how="asymmetric"`` (the default otherwise): 1 x n then n x 1 (Figure 6; 2/n of them).

    The first conv goes to ``mid`` channels (default: the conv's own output), the second keeps
    the conv's output, stride and padding split so that the output grid is the same."""
    layers = _branch(block, branch)
    _index(layers, branch, index)
    layer = layers[index]
    where = _at(branch, index)
    if not _conv(layer):
        raise ConfigError(_("{place}: only a conv can be factorized").format(place=where))
    (kh, kw), (sh, sw), (ph, pw) = (_pair(layer.get(k, d)) for k, d in
                                     (("kernel", 1), ("stride", 1), ("padding", 0)))
    if kh != kw or kh < 3:
        raise ConfigError(_("{place}: a {kernel} conv is not factorized; factorize a square "
                            "kernel of 3x3 or more").format(place=where, kernel=f"{kh}x{kw}"))
    how = how or ("3x3" if kh == 5 else "asymmetric")
    rest = {k: v for k, v in layer.args if k not in ("kernel", "stride", "padding", "out")}
    c_mid = mid or layer["out"]
    if how == "3x3":
        if kh != 5:
            raise ConfigError(_("{place}: two 3x3 convs stand for a 5x5, not a {kernel}").format(
                place=where, kernel=f"{kh}x{kh}"))
        a = (min(ph, 1), min(pw, 1))
        first = _new_conv(out=c_mid, kernel=3, padding=a, **rest)
        second = _new_conv(out=layer["out"], kernel=3, stride=(sh, sw),
                           padding=(ph - a[0], pw - a[1]), **rest)
    elif how == "asymmetric":
        first = _new_conv(out=c_mid, kernel=(1, kw), stride=(1, sw), padding=(0, pw), **rest)
        second = _new_conv(out=layer["out"], kernel=(kh, 1), stride=(sh, 1), padding=(ph, 0),
                           **rest)
    else:
        raise ConfigError(_("factorize how={how}: choose '3x3' or 'asymmetric'").format(
            how=repr(how)))
    return _set_layers(block, branch, layers[:index] + (first, second) + layers[index + 1:])


def factorizable(layer) -> list[str]:
    """The ways ``factorize`` can split ``layer`` (none unless a square conv of 3x3 or more)."""
    if not _conv(layer):
        return []
    kh, kw = _pair(layer.get("kernel"))
    if kh != kw or kh < 3:
        return []
    return ["3x3", "asymmetric"] if kh == 5 else ["asymmetric"]


def unfactorizable(layers: tuple, index: int) -> bool:
    """Whether layers ``index`` and ``index + 1`` are a factorized pair ``unfactorize`` joins."""
    if not 0 <= index < len(layers) - 1 or not (_conv(layers[index]) and _conv(layers[index + 1])):
        return False
    k1, k2 = _pair(layers[index].get("kernel")), _pair(layers[index + 1].get("kernel"))
    return (k1 == k2 == (3, 3)) or (k1[0] == 1 and k2[1] == 1 and k1[1] == k2[0] > 1) or (
        k1[1] == 1 and k2[0] == 1 and k1[0] == k2[1] > 1)


def unfactorize(block: Block, branch: str, index: int) -> Block:
    """The undo of ``factorize``: layers ``index`` and ``index + 1`` (two 3x3, or 1 x n and
    n x 1 in either order) joined into one conv (5x5, or n x n) with the second's output."""
    layers = _branch(block, branch)
    _index(layers, branch, index)
    if not unfactorizable(layers, index):
        raise ConfigError(_("branch {branch}, layers {first} and {second} are not two 3x3 convs "
                            "nor a 1 x n and n x 1 pair: nothing to join").format(
                                branch=branch, first=index, second=index + 1))
    a, b = layers[index], layers[index + 1]
    (ka, sa, pa), (kb, sb, pb) = ((_pair(x.get("kernel")), _pair(x.get("stride", 1)),
                                   _pair(x.get("padding", 0))) for x in (a, b))
    if sa != (1, 1) and sb != (1, 1):
        raise ConfigError(_("branch {branch}, layers {first} and {second} both stride: one conv "
                            "cannot stand for them").format(branch=branch, first=index,
                                                            second=index + 1))
    stride = sa if sa != (1, 1) else sb
    kernel = (ka[0] + kb[0] - 1, ka[1] + kb[1] - 1)
    padding = (pa[0] + pb[0], pa[1] + pb[1])
    rest = {k: v for k, v in b.args if k not in ("kernel", "stride", "padding", "out")}
    joined = _new_conv(out=b["out"], kernel=kernel, stride=stride, padding=padding, **rest)
    return _set_layers(block, branch, layers[:index] + (joined,) + layers[index + 2:])


def set_residual(block: Block, on: bool, scale: float | None = None) -> Block:
    """Residual on (the branches' concat -> linear 1x1 back to the input's channels -> x scale
    -> + input) or off (a plain concat); ``scale`` in (0, 10]."""
    if scale is not None and not (isinstance(scale, (int, float)) and 0 < scale <= 10):
        raise ConfigError(_("the residual scale must be a number in (0, 10], got {got}").format(
            got=repr(scale)))
    if on:
        return dc_replace(block, op="residual",
                          scale=float(scale if scale is not None else block.scale))
    return dc_replace(block, op="concat", scale=1.0, act=True, expand=True, shortcut=(), pre=())


def set_expand(block: Block, on: bool) -> Block:
    """A residual block's linear 1x1 expansion back to the shortcut's channels (Inception-ResNet)
    on, or off (ResNet: the branches themselves must give the shortcut's channels)."""
    return dc_replace(block, expand=bool(on))


def set_projection(block: Block, on: bool) -> Block:
    """A projection shortcut (1x1 conv + BN, no ReLU) with the branches' channels and the first
    branch's stride, or the identity."""
    if not on:
        return dc_replace(block, shortcut=())
    out, stride = 0, (1, 1)
    for _name, layers in block.branches:
        last = layers[-1]
        out += last["out"] if isinstance(last, Layer) and last.op == "conv" else 0
    for x in block.branches[0][1]:
        if isinstance(x, Layer) and x.op in ("conv", "maxpool", "avgpool"):
            s = ops.window_of(x).stride
            stride = (stride[0] * s[0], stride[1] * s[1])
    if out == 0:
        raise ConfigError("a projection needs the branches to end in convs (their channels are "
                          "its channels)")
    return dc_replace(block, shortcut=(_new_conv(out=out, kernel=1, stride=stride, act=False),))


def scaled(block: Block, width: float) -> Block:
    """The design with every conv's output channels times ``width`` (at least 1), as the
    variants' builders scale their blocks (``Widths``)."""
    if width == 1.0:
        return block

    def item(x):
        if isinstance(x, Layer):
            return x.replace(out=max(1, int(round(x["out"] * width)))) if x.op == "conv" else x
        return dc_replace(x, branches=tuple((n, tuple(item(y) for y in ls)) for n, ls in x.branches),
                          shortcut=tuple(item(y) for y in x.shortcut),
                          pre=tuple(item(y) for y in x.pre))
    return item(editable(block))


# -- the bench: figures beside the original's ------------------------------------------------

@dataclass(frozen=True)
class Side:
    """A block's or a network's figures."""

    out_shape: tuple
    params: int
    macs: int
    rf: tuple | None = None      # (h, w) pixels of the block's input one output unit sees

    def to_dict(self) -> dict:
        return {"out_shape": list(self.out_shape), "params": self.params, "macs": self.macs,
                "rf": list(self.rf) if self.rf else None}


@dataclass(frozen=True)
class Bench:
    name: str                 # the block opened (stage.block)
    placed: str               # where the design went: the block, or its whole stage
    in_shape: tuple           # the block's input (C, H, W) in the network
    block: dict               # {"original": Side, "designed": Side}
    network: dict             # {"original": Side, "designed": Side}
    spec: NetSpec             # the whole network with the design placed
    block_spec: NetSpec       # the designed block alone (for its graph)
    original_block_spec: NetSpec
    notes: tuple = ()

    def difference(self, part: str) -> dict:
        a, b = getattr(self, part)["original"], getattr(self, part)["designed"]
        out = {"params": b.params - a.params, "macs": b.macs - a.macs}
        if a.rf and b.rf:
            out["rf"] = [b.rf[0] - a.rf[0], b.rf[1] - a.rf[1]]
        return out

    def to_dict(self) -> dict:
        return {"name": self.name, "placed": self.placed, "in_shape": list(self.in_shape),
                **{part: {**{k: v.to_dict() for k, v in getattr(self, part).items()},
                          "difference": self.difference(part)} for part in ("block", "network")},
                "notes": list(self.notes)}


def alone(spec: NetSpec, block: Block | Layer, in_shape: tuple, name: str = "block") -> NetSpec:
    """One block as a network of its own, on an input of ``in_shape`` (C, H, W): its figures,
    its receptive field in its input's pixels, its graph. The stage keeps the block's name so
    that the graph's node ids read as in the whole network."""
    stage_name, _, block_name = name.partition(".")
    return NetSpec((Stage(stage_name, ((block_name or "0", block),), Info("stage")),),
                   Head("head", ()), (), input_size=in_shape[1], in_channels=in_shape[0],
                   defaults=spec.defaults, variant=spec.variant, layout=spec.layout,
                   title=f"{name} of {spec.title or spec.variant}")


def _side(spec: NetSpec, in_shape: tuple, name: str) -> Side:
    trace = walk(spec, tuple(in_shape[1:]))
    node = trace.nodes[name]
    f = trace.fields.get(name)
    return Side(node.out_shape, node.params, node.macs,
                (f[0].rf, f[1].rf) if f is not None else None)


def _net(trace) -> Side:
    root = trace.root  # its MACs are the forward's (auxiliary heads are a training cost)
    return Side(root.out_shape, root.params, root.macs)


def bench(spec: NetSpec, name: str, design, *, whole_stage: bool = False, _base=None) -> Bench:
    """The design placed at block ``name`` of ``spec`` (or at every block of its stage when
    ``whole_stage``), walked; figures beside the original's. Impossible designs raise
    ConfigError / ShapeError naming the branch and layer."""
    open_block(spec, name)  # refuses a name that is not a block, naming those there are
    design = editable(design)
    placed = name.partition(".")[0] if whole_stage else name
    designed_net = replaced(spec, {placed: design}, check=False)
    base_in, base_net, theirs, their_side = _base or _original(spec, name)
    trace = walk(designed_net, fields=False)   # raises ShapeError at the first impossible place
    in_shape = trace.nodes[name].in_shape
    if len(in_shape) != 3:
        raise ConfigError(_("{name} does not read a C x H x W feature map: open a block of a "
                            "stage").format(name=name))
    ours = alone(spec, design, in_shape, name)
    return Bench(name, placed, in_shape,
                 {"original": their_side, "designed": _side(ours, in_shape, name)},
                 {"original": base_net, "designed": _net(trace)},
                 designed_net, ours, theirs, tuple(trace.notes))


def _original(spec: NetSpec, name: str) -> tuple:
    """What ``bench`` compares with: the block's input, the network's figures, the original
    block alone and its figures."""
    base = walk(spec, fields=False)
    in_shape = base.nodes[name].in_shape
    theirs = alone(spec, open_block(spec, name), in_shape, name)
    return in_shape, _net(base), theirs, _side(theirs, in_shape, name)


@lru_cache(maxsize=32)
def _original_of(variant: str, layout: str, name: str) -> tuple:
    return _original(describe(variant, layout), name)


# -- a design travels --------------------------------------------------------------------------

def to_json(block: Block) -> str:
    return json.dumps(editable(block).to_dict(), indent=1)


def from_json(text: str | bytes) -> Block:
    """A design from its JSON (the block schema), checked; errors name branch and layer."""
    try:
        d = json.loads(text)
    except (ValueError, UnicodeDecodeError) as err:
        raise ConfigError(_("the design is not JSON ({error}); a design file is one block, as "
                            "the Design page downloads it").format(error=err)) from None
    return editable(as_block(d))


def encode(block: Block) -> str:
    """The design as a compact URL-safe value (compressed JSON, base64url)."""
    raw = json.dumps(editable(block).to_dict(), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode().rstrip("=")


def decode(value: str) -> Block:
    """The design from ``encode``'s value; anything else (too long, not base64, not a block)
    raises ConfigError saying so: the value is only ever read as data."""
    if not isinstance(value, str) or not value:
        raise ConfigError(_("the link carries no design"))
    if len(value) > MAX_URL_CHARS:
        raise ConfigError(_("the design in the link is {n} characters long; a design link holds "
                            "at most {most}").format(n=len(value), most=MAX_URL_CHARS))
    try:
        packed = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        unpacker = zlib.decompressobj()
        raw = unpacker.decompress(packed, MAX_JSON_BYTES)
        if unpacker.unconsumed_tail:
            raise ConfigError(_("the design in the link unpacks to more than {most} bytes").format(
                most=MAX_JSON_BYTES))
        d = json.loads(raw)
    except (binascii.Error, zlib.error, ValueError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(_("the design in the link could not be read (it is not a value the "
                            "Design page wrote); the block opened as published instead")) from None
    return editable(as_block(d, _("the design in the link")))


def snippet(block: Block, variant: str, layout: str, name: str, whole_stage: bool = False) -> str:
    """Python that builds the network with this design (``explorer.build(..., replace=)``)."""
    placed = name.partition(".")[0] if whole_stage else name
    design = json.dumps(editable(block).to_dict(), indent=4)
    design = design.replace(": true", ": True").replace(": false", ": False")
    return (f"import explorer\n\n"
            f"design = {design}\n\n"
            f"model = explorer.build({variant!r}, layout={layout!r}, replace={{{placed!r}: design}})\n"
            f"print(explorer.analyze({variant!r}, layout={layout!r}, "
            f"replace={{{placed!r}: design}}).total_macs)\n")


# -- cached for the page and the benchmark; the lessons' prepared designs ----------------------

@lru_cache(maxsize=64)
def bench_of(variant: str, layout: str, name: str, design: Block, whole_stage: bool = False
             ) -> Bench:
    """``bench`` for a variant in its reference configuration (cached: a design is hashable)."""
    return bench(describe(variant, layout), name, design, whole_stage=whole_stage,
                 _base=_original_of(variant, layout, name))


def blocks_of(variant: str, layout: str) -> list[str]:
    """Every block's qualified name, in network order."""
    spec = describe(variant, layout)
    return [f"{s.name}.{b}" for s in spec.stages for b, _ in s.blocks]


def first_block(variant: str, layout: str) -> str:
    """The block a bench opens on: the first block of the first stage after the stem."""
    spec = describe(variant, layout)
    stage = next((s for s in spec.stages if s.info.kind != "stem" and s.name != "stem"),
                 spec.stages[0])
    return f"{stage.name}.{stage.blocks[0][0]}"


def _no_asymmetric(block: Block) -> Block:
    """Every 1 x n then n x 1 pair (or n x 1 then 1 x n) joined back into an n x n conv."""
    for name, layers in block.branches:
        i = 0
        while i < len(layers) - 1:
            k = _pair(layers[i].get("kernel")) if _conv(layers[i]) else None
            if k and k != (3, 3) and unfactorizable(layers, i):
                block = unfactorize(block, name, i)
                layers = block.branch(name)
            i += 1
    return block


def _only_pool(block: Block) -> Block:
    pools = [n for n, ls in block.branches if all(isinstance(x, Layer) and x.op in POOLS
                                                  for x in ls)]
    return _with(block, {n: block.branch(n) for n in pools[:1]}) if pools else block


# key -> (label, variant, layout, block, edit, whole stage)
LESSONS = {
    "keep_5x5": (N_("keep the 5x5"), "inception_v3", "paper", "inception_a.0",
                 lambda b: unfactorize(b, "3x3dbl", 1), False),
    "no_1x7": (N_("no 1x7 / 7x1"), "inception_v3", "paper", "inception_b.0", _no_asymmetric, False),
    "pool_only": (N_("only the pool (a representational bottleneck)"), "inception_v3", "paper",
                  "reduction_a.0", _only_pool, False),
    "scale_1": (N_("scale 1.0"), "inception_resnet_v2", "paper", "inception_resnet_a.0",
                lambda b: set_residual(b, True, 1.0), True),
}


def lesson_query(key: str) -> dict[str, str]:
    """The Design page's URL parameters for a lesson's prepared design."""
    _, variant, layout, name, edit, whole = LESSONS[key]
    block = edit(open_block(describe(variant, layout), name))
    query = {"variant": variant, "layout": layout, "block": name, "design": encode(block)}
    if whole:
        query["whole"] = "stage"
    return query
