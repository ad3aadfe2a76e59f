"""The vocabulary the Inception papers draw their figures with.

Every network of the family is assembled from a handful of pieces:

- ``ConvBN``: a convolution followed by batch norm and ReLU (or the paper-era conv + bias + ReLU);
- ``Concat``: parallel branches over the same input, joined along the channel axis -- the
  Inception module itself, a grid reduction, or the split 1x3 / 3x1 pair inside a branch;
- ``Residual``: an Inception-ResNet block -- branches, concat, a linear 1x1 "filter expansion",
  a scale and an add onto the block's input;
- ``AuxHead`` and ``ClassifierHead``: the side classifiers and the final pool / dropout / fc;
- ``InceptionNet``: stages of blocks run in order, with auxiliary heads tapped after named blocks.

Branches are always ``nn.Sequential`` so that analysis and drawing code can walk any block the
same way. Blocks, stages and heads carry a ``BlockInfo`` (kind, paper figure, idea) that the
analysis and the graph read, and that ``print(model)`` shows; it never affects the computation.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import torch
from torch import nn

from explorer.spec import ops
from explorer.spec.netspec import NO_INFO, Info, NetSpec
from explorer.spec.walk import walk

# What a block is in the paper (kind, figure, idea): the spec's ``Info``, kept on the module.
BlockInfo = Info


def tag(module: nn.Module, kind: str, figure: str = "", idea: str = "") -> nn.Module:
    """Attach what a block is in the paper (read by analysis and graph code, shown by repr)."""
    module.block_info = BlockInfo(kind, figure, idea)
    return module


def block_info(module: nn.Module) -> BlockInfo:
    """A module's ``BlockInfo``; an empty one for modules the papers do not name (layers)."""
    return getattr(module, "block_info", NO_INFO)


class Described:
    """Mixin: ``repr`` names the block's kind and paper figure, e.g.
    ``Concat(kind=inception, figure=v4 paper, Figure 4 ...)``."""

    def extra_repr(self) -> str:
        info = block_info(self)
        parts = [f"kind={info.kind}"] if info.kind else []
        return ", ".join(parts + ([f"figure={info.figure}"] if info.figure else []))


class ConvBN(nn.Module):
    """Conv -> BatchNorm -> ReLU (torchvision's and timm's ``BasicConv2d``).

    ``bn=False`` gives the pre-BN form of the 2014 GoogLeNet paper: conv with bias -> ReLU.
    ``bias=True`` with ``bn=True`` is the Caffe-born BN-Inception, whose convs kept a bias.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, *,
                 bn: bool = True, bias: bool | None = None, eps: float = 1e-3, act: bool = True):
        super().__init__()
        if bias is None:
            bias = not bn
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias)
        self.bn = nn.BatchNorm2d(out_channels, eps=eps) if bn else None
        self.act = nn.ReLU(inplace=True) if act else None

    def forward(self, x):
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.act is not None:
            x = self.act(x)
        return x


def _sequential(branch: nn.Module) -> nn.Sequential:
    return branch if isinstance(branch, nn.Sequential) else nn.Sequential(branch)


class Concat(Described, nn.Module):
    """Parallel branches applied to the same input and concatenated along channels."""

    def __init__(self, branches: dict[str, nn.Module]):
        super().__init__()
        self.branches = nn.ModuleDict({name: _sequential(b) for name, b in branches.items()})

    def forward(self, x):
        outs = [branch(x) for branch in self.branches.values()]
        return outs[0] if len(outs) == 1 else torch.cat(outs, 1)


class Residual(Concat):
    """A residual block: (pre ->) branches -> concat (-> up) -> x scale -> + shortcut (-> ReLU).

    Inception-ResNet: ``up`` is the paper's "1x1 conv (linear)" filter expansion (a bias, no BN,
    no activation) that restores the input's channel count so the sum is defined, and the
    shortcut is the identity; the released networks end with one block without the final ReLU.
    ResNet: no ``up`` (the bottleneck's last conv gives the channels), scale 1, and a projection
    ``shortcut`` (1x1 conv + BN) where the block changes the grid or the width. Pre-activation
    ResNet: ``pre`` (BN -> ReLU) runs first; the branches and a projection read its output, the
    identity reads the block's input.
    """

    def __init__(self, branches: dict[str, nn.Module], up: nn.Module | None = None,
                 scale: float = 1.0, relu: bool = True, *, shortcut: nn.Module | None = None,
                 pre: nn.Module | None = None):
        nn.Module.__init__(self)
        self.pre = pre  # registered in forward order: the state dict lists them so
        self.branches = nn.ModuleDict({name: _sequential(b) for name, b in branches.items()})
        self.shortcut = shortcut
        self.up = up
        self.scale = float(scale)
        self.act = nn.ReLU(inplace=True) if relu else None

    def forward(self, x):
        y = self.pre(x) if self.pre is not None else x
        out = Concat.forward(self, y)
        short = self.shortcut(y) if self.shortcut is not None else x
        if self.up is not None:
            out = self.up(out)
        if self.scale != 1.0:
            out = out * self.scale
        # in place where no gradient is kept (a design's branch may end in a ReLU, whose
        # output autograd would need)
        out = out.add_(short) if not torch.is_grad_enabled() else out + short
        if self.act is not None:
            out = self.act(out)
        return out

    def extra_repr(self):
        return ", ".join(filter(None, (super().extra_repr(), f"scale={self.scale}")))


class BNAct(nn.BatchNorm2d):
    """BatchNorm2d -> ReLU as one module (timm's ``BatchNormAct2d``: the state dict is the BN's)."""

    def __init__(self, num_features: int, eps: float = 1e-5, act: bool = True):
        super().__init__(num_features, eps=eps)
        self.act = act  # a flag, not a module: the walk's one node for this layer

    def forward(self, x):
        x = super().forward(x)
        return torch.relu_(x) if self.act else x

    def extra_repr(self):
        return super().extra_repr() + (", act=ReLU" if self.act else "")


class AuxHead(Described, nn.Module):
    """An auxiliary classifier: pool -> 1x1 conv 128 -> (conv) -> fc layers.

    Built from ``layers`` so that GoogLeNet's and Inception-v3's heads, which differ in their
    pooling and fc stack, share one class and one drawing.
    """

    def __init__(self, layers: OrderedDict):
        super().__init__()
        for name, layer in layers.items():
            self.add_module(name, layer)

    def forward(self, x):
        for layer in self.children():
            x = layer(x)
        return x


class ClassifierHead(Described, nn.Sequential):
    """(optional convs) -> global average pool -> flatten -> dropout -> fc (-> ...)."""


class Stage(Described, nn.Sequential):
    """Blocks of one stage (``stem``, ``inception_a``, ...), run in order."""


class InceptionOutputs(NamedTuple):
    """What a network with auxiliary heads returns in training mode."""

    logits: torch.Tensor
    aux_logits: tuple


class InceptionNet(nn.Module):
    """Stages of blocks, run in order, then the classifier head.

    ``stages`` maps a stage name (``stem``, ``inception_a``, ``reduction_a``, ...) to an
    ``nn.Sequential`` of named blocks. ``aux`` maps a block path (``"inception_b.mixed_6e"``)
    to the auxiliary head that reads that block's output; aux heads run in training mode only,
    as in the papers (they are regularisers, not part of inference).
    """

    def __init__(self, stages: dict[str, nn.Sequential], head: nn.Module,
                 aux: dict[str, tuple[str, nn.Module]] | None = None):
        super().__init__()
        self.stage_names = list(stages)
        for name, stage in stages.items():
            self.add_module(name, stage)
        self.aux_taps: dict[str, str] = {}
        for block_path, (aux_name, aux_head) in (aux or {}).items():
            self.add_module(aux_name, aux_head)
            self.aux_taps[block_path] = aux_name
        self.head = head

    def forward_features(self, x):
        aux_logits = []
        run_aux = self.training and bool(self.aux_taps)
        for stage_name in self.stage_names:
            stage = getattr(self, stage_name)
            if not run_aux:
                x = stage(x)
                continue
            for block_name, block in stage.named_children():
                x = block(x)
                aux_name = self.aux_taps.get(f"{stage_name}.{block_name}")
                if aux_name is not None:
                    aux_logits.append(getattr(self, aux_name)(x))
        return x, tuple(aux_logits)

    def forward(self, x):
        x, aux_logits = self.forward_features(x)
        logits = self.head(x)
        if aux_logits:
            return InceptionOutputs(logits, aux_logits)
        return logits


# -- from a NetSpec: the torch layer of every op, and the modules of a whole network ------------

def _conv(layer, x, defaults):
    w = ops.window_of(layer)
    bn, bias, act, eps = ops.conv_parts(layer, defaults)
    return ConvBN(x[0], layer["out"], w.kernel, w.stride, w.padding, bn=bn, bias=bias, eps=eps,
                  act=act)


def _pool(cls, **extra):
    def make(layer, x, defaults):
        w = ops.window_of(layer)
        return cls(w.kernel, w.stride, w.padding, ceil_mode=layer.get("ceil_mode", False),
                   **{k: layer.get(k, v) for k, v in extra.items()})
    return make


# op -> its torch layer, given the layer, its input shape and the network's conv defaults
LAYERS = {
    "conv": _conv,
    "maxpool": _pool(nn.MaxPool2d),
    "avgpool": _pool(nn.AvgPool2d, count_include_pad=True),
    "adaptive_avgpool": lambda layer, x, d: nn.AdaptiveAvgPool2d(layer["size"]),
    "lrn": lambda layer, x, d: nn.LocalResponseNorm(layer["size"], alpha=layer.get("alpha", 1e-4),
                                                    beta=layer.get("beta", 0.75), k=layer.get("k", 1.0)),
    "flatten": lambda layer, x, d: nn.Flatten(1),
    "dropout": lambda layer, x, d: nn.Dropout(layer["p"]),
    "linear": lambda layer, x, d: nn.Linear(x[0], layer["out"], bias=layer.get("bias", True)),
    "bn1d": lambda layer, x, d: nn.BatchNorm1d(x[0], eps=layer.get("eps", 1e-5)),
    "norm": lambda layer, x, d: BNAct(x[0], eps=layer.get("eps", d["eps"]), act=layer.get("act", True)),
    "relu": lambda layer, x, d: nn.ReLU(inplace=True),
}


def _tagged(module: nn.Module, info: Info) -> nn.Module:
    if info.kind or info.figure or info.idea:
        tag(module, info.kind, info.figure, info.idea)
    return module


def materialize(spec: NetSpec) -> InceptionNet:
    """The modules of ``spec`` (on the current default device), named as the spec names them."""
    trace = walk(spec, fields=False)
    defaults = dict(spec.defaults)

    def item(node):
        if node.op in ("concat", "residual"):
            block = node.entry
            holder = node.child("branches")
            branches = {b.name.rpartition(".")[2]: sequence(b) for b in holder.children}
            if block.op == "concat":
                return _tagged(Concat(branches), block.info)
            parts = {c.name.rpartition(".")[2]: c for c in node.children}
            up = parts.get("up")
            up = up and nn.Conv2d(up.in_shape[0], up.out_shape[0], 1, bias=True)
            shortcut, pre = (sequence(parts[k]) if k in parts else None for k in ("shortcut", "pre"))
            return _tagged(Residual(branches, up, block.scale, relu=block.act, shortcut=shortcut,
                                    pre=pre), block.info)
        return LAYERS[node.op](node.entry, node.in_shape, defaults)

    def sequence(node):
        return nn.Sequential(*(item(c) for c in node.children))

    def named(node, cls):
        return _tagged(cls(OrderedDict((c.name.rpartition(".")[2], item(c)) for c in node.children)),
                       node.entry.info)

    stages = {n.name: named(n, Stage) for n in trace.root.children if n.op == "stage"}
    aux = {a.tap: (a.name, named(trace.nodes[a.name], AuxHead)) for a in spec.aux}
    model = InceptionNet(stages, named(trace.nodes["head"], ClassifierHead), aux)
    model.spec = spec
    return model
