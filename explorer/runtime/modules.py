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


class Concat(Described, nn.Module):
    """Parallel branches applied to the same input and concatenated along channels."""

    def __init__(self, branches: dict[str, nn.Module]):
        super().__init__()
        self.branches = nn.ModuleDict(
            {name: b if isinstance(b, nn.Sequential) else nn.Sequential(b)
             for name, b in branches.items()})

    def forward(self, x):
        return torch.cat([branch(x) for branch in self.branches.values()], 1)


class Residual(Concat):
    """Inception-ResNet block: x + scale * expand(concat(branches(x))), then ReLU.

    ``up`` is the paper's "1x1 conv (linear)" filter expansion: it has a bias, no BN and no
    activation, and restores the input's channel count so the sum is defined. The released
    networks end with one such block without the final ReLU.
    """

    def __init__(self, branches: dict[str, nn.Module], in_channels: int, mixed: int, scale: float,
                 relu: bool = True):
        super().__init__(branches)
        self.up = nn.Conv2d(mixed, in_channels, 1, bias=True)
        self.scale = float(scale)
        self.act = nn.ReLU(inplace=True) if relu else None

    def forward(self, x):
        out = self.up(super().forward(x))
        out = out * self.scale + x
        if self.act is not None:
            out = self.act(out)
        return out

    def extra_repr(self):
        return ", ".join(filter(None, (super().extra_repr(), f"scale={self.scale}")))


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
            branches = {b.name.rpartition(".")[2]: nn.Sequential(*(item(c) for c in b.children))
                        for b in holder.children}
            if block.op == "concat":
                return _tagged(Concat(branches), block.info)
            up = node.child("up")
            return _tagged(Residual(branches, node.in_shape[0], up.in_shape[0], block.scale,
                                    relu=block.act), block.info)
        return LAYERS[node.op](node.entry, node.in_shape, defaults)

    def named(node, cls):
        return _tagged(cls(OrderedDict((c.name.rpartition(".")[2], item(c)) for c in node.children)),
                       node.entry.info)

    stages = {n.name: named(n, Stage) for n in trace.root.children if n.op == "stage"}
    aux = {a.tap: (a.name, named(trace.nodes[a.name], AuxHead)) for a in spec.aux}
    model = InceptionNet(stages, named(trace.nodes["head"], ClassifierHead), aux)
    model.spec = spec
    return model
