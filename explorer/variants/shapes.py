"""Every module's input and output shape, from the modules' own arguments: no forward pass.

A network built from ``blocks`` runs no functional convs or pools in its forward code: every
layer is a module, and the blocks compose them in a fixed way (a ``Sequential`` in order; a
``Concat``'s branches from one input, joined along channels; a ``Residual`` adds its linear 1x1
expansion onto its input; an ``InceptionNet`` runs its stages, then its head, and its aux heads
read tapped blocks). So the shapes follow from kernel sizes, strides, paddings and channel
counts, with PyTorch's own output-size rules (``ceil_mode`` included) and its checks: a layer
that PyTorch would refuse (wrong channel count, a map smaller than the kernel, branches that do
not line up) raises ``ShapeError`` here too.

This replaces a forward pass on the "meta" device, which gives the same shapes (the tests check
every variant against one) but costs about a second the first time (it imports torch._dynamo).
"""

from __future__ import annotations

from torch import nn

from explorer.variants.blocks import AuxHead, Concat, ConvBN, InceptionNet, Residual

Shape = tuple[int, ...]
# Layers whose output has their input's shape (LocalResponseNorm needs a C x H x W input).
SAME_SHAPE = (nn.ReLU, nn.Dropout, nn.Identity, nn.LocalResponseNorm)
POOLS = (nn.MaxPool2d, nn.AvgPool2d)
ADAPTIVE = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


# The classes whose forward the rules below describe: a module whose forward comes from
# anywhere else (a subclass with its own forward, a foreign layer) is Unsupported.
KNOWN = (InceptionNet, Residual, Concat, ConvBN, AuxHead, nn.Sequential, nn.Conv2d, *POOLS,
         *ADAPTIVE, nn.modules.batchnorm._BatchNorm, nn.Linear, nn.Flatten, *SAME_SHAPE)


def _owner(m: nn.Module, method: str = "forward") -> type:
    """The class whose ``method`` the module runs."""
    return next(c for c in type(m).__mro__ if method in vars(c))


class ShapeError(RuntimeError):
    """A layer that would refuse its input (PyTorch raises a RuntimeError there too)."""


class Unsupported(RuntimeError):
    """A module this walk has no rule for (a subclass with its own forward, a foreign layer):
    a gap in the rules, never a config that does not fit."""


def propagate(model: nn.Module, input_shape: Shape, *, aux: bool = True
              ) -> tuple[dict[str, tuple[Shape, Shape]], list[str]]:
    """Every module's (input shape, output shape) without the batch dimension, by qualified
    name ("" is the model), and the names in the order their forward would finish (children
    before their parent, as forward hooks fire). Aux heads, when built and ``aux`` is set, come
    last, each read from its tapped block's output."""
    walk = _Walk()
    walk.run(model, (1, *input_shape), "", aux)
    return {k: (i[1:], o[1:]) for k, (i, o) in walk.shapes.items()}, walk.order


def macs(model: nn.Module, shapes: dict[str, tuple[Shape, Shape]]) -> dict[str, int]:
    """Multiply-accumulates of every conv and linear layer (one image), by qualified name."""
    out = {}
    for name, m in model.named_modules():
        if name not in shapes:
            continue
        n = 1
        for d in shapes[name][1]:
            n *= d
        if isinstance(m, nn.Conv2d):
            out[name] = n * m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
        elif isinstance(m, nn.Linear):
            out[name] = n * m.in_features
    return out


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def conv_size(n: int, k: int, s: int, p: int, d: int = 1) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def pool_size(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's ``pooling_output_shape``: ceil mode adds a last, partial window, unless it
    would start inside the right padding."""
    size = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (size - 1) * s >= n + p:
        size -= 1
    return size


def broadcast(a: Shape, b: Shape, where: str) -> Shape:
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x != y and 1 not in (x, y):
            raise ShapeError(f"{where}: cannot add {a} and {b}")
        out.append(y if x == 1 else x)
    return tuple(reversed(out))


class _Walk:
    def __init__(self):
        self.shapes: dict[str, tuple[Shape, Shape]] = {}
        self.order: list[str] = []

    def run(self, m: nn.Module, x: Shape, path: str, aux: bool = False) -> Shape:
        y = self._apply(m, x, path, aux)
        self.shapes[path] = (x, y)
        self.order.append(path)
        if isinstance(m, InceptionNet) and aux:  # after the forward, as analysis runs them
            prefix = f"{path}." if path else ""
            for tap, aux_name in m.aux_taps.items():
                self.run(getattr(m, aux_name), self.shapes[prefix + tap][1], prefix + aux_name)
        return y

    def _apply(self, m: nn.Module, x: Shape, path: str, aux: bool) -> Shape:
        def sub(name: str) -> str:
            return f"{path}.{name}" if path else name

        where = path or "model"
        if _owner(m) not in KNOWN or (isinstance(m, InceptionNet)
                                       and _owner(m, "forward_features") is not InceptionNet):
            raise Unsupported(f"{where}: no shape rule for {type(m).__name__}")
        if isinstance(m, InceptionNet):
            for name in m.stage_names:
                x = self.run(getattr(m, name), x, sub(name))
            return self.run(m.head, x, sub("head"))
        if isinstance(m, Concat):  # Residual included
            outs = [self.run(b, x, sub(f"branches.{n}")) for n, b in m.branches.items()]
            if len({len(o) for o in outs}) > 1 or len({o[:1] + o[2:] for o in outs}) > 1:
                raise ShapeError(f"{where}: branch outputs {outs} cannot be concatenated")
            cat = (outs[0][0], sum(o[1] for o in outs), *outs[0][2:])
            if not isinstance(m, Residual):
                return cat
            y = broadcast(self.run(m.up, cat, sub("up")), x, where)
            return self.run(m.act, y, sub("act")) if m.act is not None else y
        if isinstance(m, ConvBN):
            x = self.run(m.conv, x, sub("conv"))
            for name in ("bn", "act"):
                if getattr(m, name) is not None:
                    x = self.run(getattr(m, name), x, sub(name))
            return x
        if isinstance(m, (AuxHead, nn.Sequential)):  # ClassifierHead too: children in order
            for name, child in m.named_children():
                x = self.run(child, x, sub(name))
            return x
        if isinstance(m, nn.Conv2d):
            return self._conv(m, x, where)
        if isinstance(m, POOLS):
            return self._pool(m, x, where)
        if isinstance(m, ADAPTIVE):
            if len(x) != 4 or 0 in x[1:]:
                raise ShapeError(f"{where}: adaptive pool of a {x[1:]} input")
            out = _pair(m.output_size)
            return (*x[:2], *(n if o is None else o for n, o in zip(x[2:], out)))
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if len(x) < 2 or x[1] != m.num_features:
                raise ShapeError(f"{where}: {m.num_features} features expected, input {x[1:]}")
            return x
        if isinstance(m, nn.Linear):
            if x[-1] != m.in_features:
                raise ShapeError(f"{where}: {m.in_features} inputs expected, input {x[1:]}")
            return (*x[:-1], m.out_features)
        if isinstance(m, nn.Flatten):
            start, end = (d % len(x) for d in (m.start_dim, m.end_dim))
            n = 1
            for d in x[start:end + 1]:
                n *= d
            return (*x[:start], n, *x[end + 1:])
        if isinstance(m, SAME_SHAPE):
            if isinstance(m, nn.LocalResponseNorm) and len(x) < 3:
                raise ShapeError(f"{where}: LocalResponseNorm needs 3 or more dimensions")
            return x
        raise Unsupported(f"{where}: no shape rule for {type(m).__name__}")  # not reached

    @staticmethod
    def _conv(m: nn.Conv2d, x: Shape, where: str) -> Shape:
        if len(x) != 4 or x[1] != m.in_channels:
            raise ShapeError(f"{where}: {m.in_channels} input channels expected, input {x[1:]}")
        k, s, d = _pair(m.kernel_size), _pair(m.stride), _pair(m.dilation)
        if m.padding == "same":
            return (x[0], m.out_channels, *x[2:])
        p = (0, 0) if m.padding == "valid" else _pair(m.padding)
        hw = tuple(conv_size(x[2 + i], k[i], s[i], p[i], d[i]) for i in range(2))
        if min(hw) < 1:
            raise ShapeError(f"{where}: a {k[0]}x{k[1]} kernel is larger than the padded "
                             f"{x[2]}x{x[3]} input")
        return (x[0], m.out_channels, *hw)

    @staticmethod
    def _pool(m, x: Shape, where: str) -> Shape:
        if len(x) != 4:
            raise ShapeError(f"{where}: a pool needs a C x H x W input, got {x[1:]}")
        k, p = _pair(m.kernel_size), _pair(m.padding)
        s = _pair(m.stride or m.kernel_size)
        d = _pair(getattr(m, "dilation", 1))
        if any(p[i] > (d[i] * (k[i] - 1) + 1) // 2 for i in range(2)):
            raise ShapeError(f"{where}: padding larger than half the kernel")
        hw = tuple(pool_size(x[2 + i], k[i], s[i], p[i], d[i], m.ceil_mode) for i in range(2))
        if min(hw) < 1:
            raise ShapeError(f"{where}: the {x[2]}x{x[3]} input is too small for a "
                             f"{k[0]}x{k[1]} pool")
        return (*x[:2], *hw)
