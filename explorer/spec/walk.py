"""The one walk: a NetSpec and an input size -> every module's shapes, tensors, MACs and field.

The walk threads the input shape through the spec as the modules' forward code would run it (a
branch's layers in order; a block's branches from one input, joined along channels; a residual
block adds its linear 1x1 expansion onto its input; the stages, then the head; each auxiliary
head from its tapped block's output) and records a ``Node`` per module, under the qualified name
the module gets when the spec is built (``inception_a.0.branches.3x3dbl.1.conv``). Analysis
rows, receptive fields, the DOT drawing, the config checks and the state-dict shapes that
checkpoints are checked against all read this one record; nothing here imports torch.

A layer PyTorch would refuse (a kernel larger than its input, branches that do not line up,
zero channels) raises ``ShapeError`` naming the place: stage, block, branch, layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from explorer.core.i18n import N_, _
from explorer.spec import fields as rf
from explorer.spec import ops
from explorer.spec.errors import ShapeError, placed
from explorer.spec.netspec import NO_INFO, Block, Head, Info, Layer, NetSpec, Stage

Shape = tuple[int, ...]
# a note of the analysis (English, as kept: a page says it with explorer.core.i18n.again)
CENTRES = N_("{where}: branch centres differ by {h} x {w} input px (h x w); its field is the hull "
             "of theirs")


@dataclass(eq=False)
class Node:
    """One module of the network as the spec will build it."""

    name: str                     # qualified module name; "" is the network
    op: str                       # a layer op, or "net", "stage", "concat", "residual",
                                  # "branch", "head", "aux", "conv2d", "bn2d", "expand",
                                  # a residual block's "pre" and "shortcut" (Sequentials)
    entry: object                 # the spec object it comes from (Layer, Block, Stage, Head)
    in_shape: Shape
    out_shape: Shape = ()
    info: Info = NO_INFO
    children: list = field(default_factory=list)
    tensors: dict = field(default_factory=dict)   # own state-dict entries: name -> shape
    params: int = 0               # learnable values under this node
    bn_params: int = 0            # the BatchNorm share of them
    macs: int = 0                 # multiply-accumulates under this node (one image)

    @property
    def leaf(self) -> bool:
        """A layer as the papers draw it (a conv with its BN and ReLU counts as one)."""
        return self.op in ops.OPS or self.op in ("expand", "conv2d", "bn2d")

    def child(self, name: str) -> Node:
        return next(c for c in self.children if c.name.rpartition(".")[2] == name)


@dataclass
class Trace:
    """Everything the walk found, by qualified name."""

    spec: NetSpec
    input_size: int | tuple[int, int]
    root: Node
    nodes: dict[str, Node]                # every module, parents before children
    order: list[str]                      # names in the order their forward finishes
    fields: dict[str, rf.Field]           # output fields, plus "<block>.concat" / ".add"
    notes: list[str]                      # joins whose branch centres disagree
    aux_taps: dict[str, str]              # tapped block -> aux head name

    def state_shapes(self) -> dict[str, tuple]:
        """The state dict's names and shapes, as ``build(spec).state_dict()`` has them."""
        out = {}
        for name, node in self.nodes.items():
            for t, shape in node.tensors.items():
                out[f"{name}.{t}" if name else t] = shape
        return out


def walk(spec: NetSpec, input_size=None, *, fields: bool = True) -> Trace:
    """Walk ``spec`` for an input of ``input_size`` (n for n x n, or (height, width); default:
    the spec's own size)."""
    size = input_size or spec.input_size
    return _Walk(spec, fields).run(size)


def _join(a: str, b: str) -> str:
    return f"{a}.{b}" if a else b


class _Walk:
    def __init__(self, spec: NetSpec, with_fields: bool):
        self.spec = spec
        self.defaults = dict(spec.defaults)
        self.with_fields = with_fields
        self.nodes: dict[str, Node] = {}
        self.order: list[str] = []
        self.fields: dict[str, rf.Field] = {}
        self.notes: list[str] = []
        self.where: list = []  # (kind, name) pairs: errors.place

    # -- bookkeeping ---------------------------------------------------------------------------
    def node(self, name: str, op: str, entry, x: Shape, info: Info = NO_INFO) -> Node:
        n = Node(name, op, entry, x, info=info)
        self.nodes[name] = n
        return n

    def done(self, n: Node, y: Shape, f, *, runs: bool = True) -> Node:
        """Close a node: its output, its totals from its children, its place in the order
        (``runs``: the module has a forward of its own; a ModuleDict has none)."""
        n.out_shape = y
        own = sum(ops.numel(s) for t, s in n.tensors.items() if ops.is_param(t))
        own_bn = sum(ops.numel(s) for t, s in n.tensors.items() if ops.is_param(t)
                     and (t.startswith("bn.") or n.op in ("bn1d", "bn2d", "norm")))
        n.params = own + sum(c.params for c in n.children)
        n.bn_params = own_bn + sum(c.bn_params for c in n.children)
        n.macs += sum(c.macs for c in n.children)
        if runs:
            self.order.append(n.name)
        if f is not None and self.with_fields:
            self.fields[n.name] = f
        return n

    def fail(self, message: str):
        raise ShapeError(placed(self.where, message))

    # -- the network -----------------------------------------------------------------------------
    def run(self, size) -> Trace:
        spec = self.spec
        h, w = (size, size) if isinstance(size, int) else size
        x = (spec.in_channels, h, w)
        f = rf.input_field(h, w) if self.with_fields else None
        root = self.node("", "net", spec, x)
        outputs: dict[str, tuple[Shape, object]] = {}
        for stage in spec.stages:
            self.where.append(("stage", stage.name))
            x, f = self.stage(root, stage, x, f, outputs)
            self.where.pop()
        self.where.append(("head", ""))
        head = self.head(root, spec.head, x, f, "head")
        self.where.pop()
        self.done(root, head.out_shape, self.fields.get("head"))
        taps = {}
        for aux in spec.aux:  # after the forward, as the analysis runs them
            if aux.tap not in outputs:
                raise ShapeError(placed([("aux", aux.name)], _(
                    "its tap {tap} names no block (stage.block)").format(tap=repr(aux.tap))))
            self.where.append(("aux", aux.name))
            tx, tf = outputs[aux.tap]
            a = self.head(root, aux, tx, tf, aux.name, op="aux")
            self.where.pop()
            root.params += a.params
            root.bn_params += a.bn_params
            taps[aux.tap] = aux.name
        if self.with_fields:
            self.fields[""] = self.fields.get("head")
        return Trace(spec, size, root, self.nodes, self.order, self.fields, self.notes, taps)

    def stage(self, parent: Node, stage: Stage, x: Shape, f, outputs) -> tuple[Shape, object]:
        n = self.node(stage.name, "stage", stage, x, stage.info)
        parent.children.append(n)
        for name, block in stage.blocks:
            self.where.append(("block", name))
            x, f = self.item(n, _join(stage.name, name), block, x, f)
            outputs[_join(stage.name, name)] = (x, f)
            self.where.pop()
        self.done(n, x, f)
        return x, f

    def head(self, parent: Node, head: Head, x: Shape, f, name: str, op: str = "head"):
        n = self.node(name, op, head, x, head.info)
        parent.children.append(n)
        for lname, layer in head.layers:
            self.where.append(("layer", lname))
            x, f = self.layer(n, _join(name, lname), layer, x, f)
            self.where.pop()
        return self.done(n, x, f)

    def item(self, parent: Node, name: str, item, x: Shape, f):
        if isinstance(item, Block):
            return self.block(parent, name, item, x, f)
        return self.layer(parent, name, item, x, f)

    # -- blocks --------------------------------------------------------------------------------
    def block(self, parent: Node, name: str, block: Block, x: Shape, f):
        n = self.node(name, block.op, block, x, block.info)
        parent.children.append(n)
        inp, inp_field = x, f                      # what the add's identity shortcut reads
        if block.pre:                              # pre-activation: the branches read its output
            x, f = self.sequence(n, _join(name, "pre"), "pre", block.pre, x, f)
        holder = self.node(_join(name, "branches"), "branches", block, x)
        n.children.append(holder)
        ends = []
        for bname, layers in block.branches:
            self.where.append(("branch", bname))
            b = self.node(_join(holder.name, bname), "branch", layers, x)
            holder.children.append(b)
            y, g = x, f
            for i, layer in enumerate(layers):
                self.where.append(("layer", i))
                y, g = self.item(b, _join(b.name, str(i)), layer, y, g)
                self.where.pop()
            self.done(b, y, g)
            ends.append((y, g))
            self.where.pop()
        self.done(holder, x, None, runs=False)
        outs = [y for y, _ in ends]
        if len({len(o) for o in outs}) > 1 or len({o[1:] for o in outs}) > 1:
            self.fail(_("the branches give {shapes}: their grids must agree to be concatenated "
                        "(check strides and paddings)").format(shapes=", ".join(
                            f"{bn} {'x'.join(map(str, o))}"
                            for (bn, _b), o in zip(block.branches, outs))))
        cat = (sum(o[0] for o in outs), *outs[0][1:])
        cat_field = self.merge([g for _, g in ends], name) if self.with_fields else None
        if cat_field is not None:
            self.fields[_join(name, "concat")] = cat_field
        if block.op == "concat":
            return self.done(n, cat, cat_field).out_shape, cat_field
        # residual: (the linear 1x1 expansion back to the shortcut's channels,) scaled, added
        if len(x) != 3:
            self.fail(_("a residual block needs a C x H x W input"))
        if block.shortcut:  # a projection, from the pre-activated input
            target, target_field = self.sequence(n, _join(name, "shortcut"), "shortcut",
                                                 block.shortcut, x, f)
        else:
            target, target_field = inp, inp_field
        if cat[1:] != target[1:]:
            message = (_("the branches give {grid} but the shortcut gives {input}: a residual add "
                         "needs the same grid (a projection shortcut with the branches' stride)")
                       if block.shortcut else
                       _("the branches give {grid} but the input is {input}: a residual add "
                         "needs the grid unchanged (no stride, same padding), or a projection "
                         "shortcut with the branches' stride"))
            self.fail(message.format(grid="x".join(map(str, cat[1:])),
                                     input="x".join(map(str, target[1:]))))
        res_field = cat_field
        if block.expand:
            up = self.node(_join(name, "up"), "expand", block, cat)
            up.tensors = {"weight": (target[0], cat[0], 1, 1), "bias": (target[0],)}
            up.macs = ops.numel(target) * cat[0]
            n.children.append(up)
            self.done(up, target, cat_field)
        elif cat[0] != target[0]:
            self.fail(_("the branches give {channels} channels but the shortcut needs {needed}: "
                        "without the 1x1 expansion the last conv must give the shortcut's "
                        "channels (or add a projection shortcut)").format(
                            channels=cat[0], needed=target[0]))
        added = self.merge([res_field, target_field], name) if self.with_fields else None
        if added is not None:
            self.fields[_join(name, "add")] = added
        if block.act:
            act = self.node(_join(name, "act"), "relu", block, target)
            n.children.append(act)
            self.done(act, target, added)
        return self.done(n, target, added).out_shape, added

    def sequence(self, parent: Node, name: str, op: str, layers: tuple, x: Shape, f):
        """A block's ``pre`` or ``shortcut`` layers, run in order (an ``nn.Sequential``)."""
        n = self.node(name, op, layers, x)
        parent.children.append(n)
        self.where.append(op)
        for i, layer in enumerate(layers):
            x, f = self.layer(n, _join(name, str(i)), layer, x, f)
        self.where.pop()
        self.done(n, x, f)
        return x, f

    def merge(self, fs: list, where: str):
        if any(g is None for g in fs):
            return None
        try:
            (h, dh), (w, dw) = (rf.merge([g[i] for g in fs], where, axis)
                                for i, axis in enumerate(("height", "width")))
        except rf.Unsupported as err:
            self.notes.append(str(err))
            self.with_fields = False  # fields stop here; shapes go on
            self.fields.clear()
            return None
        if dh or dw:
            self.notes.append(CENTRES.format(where=where, h=rf.number(dh), w=rf.number(dw)))
        return h, w

    # -- layers --------------------------------------------------------------------------------
    def layer(self, parent: Node, name: str, layer: Layer, x: Shape, f):
        n = self.node(name, layer.op, layer, x)
        parent.children.append(n)
        try:
            y = ops.out_shape(layer, x)
        except ShapeError as err:
            self.fail(str(err))
        if layer.op == "linear" and f is not None and (f[0].size != 1 or f[1].size != 1):
            f = None  # never reached from our specs: a flatten comes first
        g = ops.field(layer, f) if f is not None else None
        if layer.op == "conv":
            bn, bias, act, _ = ops.conv_parts(layer, self.defaults)
            conv = self.node(_join(name, "conv"), "conv2d", layer, x)
            conv.tensors = {k[5:]: v for k, v in ops.tensors(layer, x, self.defaults).items()
                            if k.startswith("conv.")}
            conv.macs = ops.macs(layer, x, y)
            n.children.append(self.done(conv, y, g))
            if bn:
                b = self.node(_join(name, "bn"), "bn2d", layer, y)
                b.tensors = ops.bn_tensors("", y[0])
                n.children.append(self.done(b, y, g))
            if act:
                n.children.append(self.done(self.node(_join(name, "act"), "relu", layer, y), y, g))
        else:
            n.tensors = ops.tensors(layer, x, self.defaults)
            n.macs = ops.macs(layer, x, y)
        return self.done(n, y, g).out_shape, g
