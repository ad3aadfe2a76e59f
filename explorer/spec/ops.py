"""One table of ops: for each, its arguments and what follows from them given an input shape.

A rule says, for one layer of a NetSpec: which arguments it takes (and their defaults), its
output shape (PyTorch's own output-size rules and refusals), its tensors (the state-dict names
and shapes the module will have: params, BatchNorm's share, buffers), its multiply-accumulates,
its receptive-field step, and how the papers name it ("3x3 conv, 192 /2"). The walk
(``explorer.spec.walk``) applies these; ``explorer.runtime.modules.LAYERS`` holds the torch layer
for each op (the one place that imports torch), and a test checks the two tables name the same
ops. Shapes here are per image: (C, H, W) or (features,).
"""

from __future__ import annotations

from dataclasses import dataclass

from explorer.core.i18n import N_, _
from explorer.spec import fields as rf
from explorer.spec.errors import ConfigError, ShapeError

Shape = tuple[int, ...]


def tupled(v):
    """JSON lists become tuples (hashable, comparable); everything else stays."""
    return tuple(tupled(x) for x in v) if isinstance(v, (list, tuple)) else v


def listed(v):
    return [listed(x) for x in v] if isinstance(v, tuple) else v


def pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _pos_int(v) -> bool:
    return _int(v) and v >= 1


def _size(v, minimum=1) -> bool:
    """An int or an [h, w] pair of ints, each >= minimum."""
    if _int(v):
        return v >= minimum
    return isinstance(v, tuple) and len(v) == 2 and all(_int(x) and x >= minimum for x in v)


def _bool(v) -> bool:
    return isinstance(v, bool)


def _prob(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1


def _positive(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


ARG_TEXT = {_pos_int: N_("a positive integer"), _size: N_("a positive integer or [h, w]"),
            _bool: N_("true or false"), _prob: N_("a probability in [0, 1)"),
            _positive: N_("a positive number"), "pad": N_("a non-negative integer or [h, w]")}


def _pad(v) -> bool:
    return _size(v, minimum=0)


ARG_TEXT[_pad] = ARG_TEXT["pad"]


@dataclass(frozen=True)
class Rule:
    op: str
    required: tuple[str, ...]
    optional: dict           # name -> checker
    checks: dict             # name -> checker, for required ones
    words: str               # what it is, for messages (marked with N_, said with _)

    def check(self, args: dict) -> None:
        missing = [k for k in self.required if k not in args]
        if missing:
            raise ConfigError(_("{op} needs {missing}").format(op=self.op,
                                                                missing=", ".join(missing)))
        allowed = set(self.required) | set(self.optional)
        unknown = sorted(set(args) - allowed)
        if unknown:
            raise ConfigError(_("{op} takes no {unknown}; it takes: {allowed}").format(
                op=self.op, unknown=", ".join(unknown),
                allowed=", ".join(sorted(allowed)) or _("nothing")))
        for key, value in args.items():
            checker = self.checks.get(key) or self.optional.get(key)
            if not checker(value):
                raise ConfigError(_("{op} {key} must be {allowed}, got {got}").format(
                    op=self.op, key=key, allowed=_(ARG_TEXT[checker]), got=repr(listed(value))))


OPS: dict[str, Rule] = {r.op: r for r in (
    Rule("conv", ("out", "kernel"), {"stride": _size, "padding": _pad, "bn": _bool,
                                     "bias": _bool, "act": _bool, "eps": _positive},
         {"out": _pos_int, "kernel": _size}, N_("a convolution (+ BatchNorm + ReLU)")),
    Rule("maxpool", ("kernel",), {"stride": _size, "padding": _pad, "ceil_mode": _bool},
         {"kernel": _size}, N_("a max pool")),
    Rule("avgpool", ("kernel",), {"stride": _size, "padding": _pad, "ceil_mode": _bool,
                                  "count_include_pad": _bool}, {"kernel": _size},
         N_("an average pool")),
    Rule("adaptive_avgpool", ("size",), {}, {"size": _size}, N_("an average pool to a fixed size")),
    Rule("lrn", ("size",), {"alpha": _positive, "beta": _positive, "k": _positive},
         {"size": _pos_int}, N_("local response normalisation")),
    Rule("flatten", (), {}, {}, N_("a flatten")),
    Rule("dropout", ("p",), {}, {"p": _prob}, "dropout"),
    Rule("linear", ("out",), {"bias": _bool}, {"out": _pos_int}, N_("a fully connected layer")),
    Rule("bn1d", (), {"eps": _positive}, {}, N_("batch norm over features")),
    # a pre-activation ResNet's BN -> ReLU on its own, before a conv (He et al. 2016b)
    Rule("norm", (), {"eps": _positive, "act": _bool}, {}, N_("a batch norm (+ ReLU)")),
    Rule("relu", (), {}, {}, N_("a ReLU")),
)}


def rule(op: str) -> Rule:
    try:
        return OPS[op]
    except (KeyError, TypeError):
        raise ConfigError(_("unknown op {op}; the ops are: {ops}").format(
            op=repr(op), ops=", ".join(OPS) + ", concat, residual")) from None


# -- what follows from a layer, given its input -------------------------------------------------

@dataclass(frozen=True)
class Conv:
    """A layer's convolution or pool window, with the network's defaults applied."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


def window_of(layer) -> Conv:
    k = pair(layer["kernel"])
    s = pair(layer.get("stride", 1 if layer.op == "conv" else k))
    return Conv(k, s, pair(layer.get("padding", 0)))


def conv_size(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - (k - 1) - 1) // s + 1


def pool_size(n: int, k: int, s: int, p: int, ceil_mode: bool) -> int:
    """PyTorch's ``pooling_output_shape``: ceil mode adds a last, partial window, unless it
    would start inside the right padding."""
    size = (n + 2 * p - (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (size - 1) * s >= n + p:
        size -= 1
    return size


def conv_parts(layer, defaults: dict) -> tuple[bool, bool, bool, float]:
    """(bn, bias, act, eps) of a conv layer, the network's defaults filled in."""
    bn = layer.get("bn", defaults["bn"])
    return bn, layer.get("bias", not bn), layer.get("act", True), layer.get("eps", defaults["eps"])


def out_shape(layer, x: Shape) -> Shape:
    """The output shape of ``layer`` for an input of shape ``x``, or ShapeError."""
    op = layer.op
    if op in ("conv", "maxpool", "avgpool"):
        if len(x) != 3:
            raise ShapeError(_("{what} needs a C x H x W input, got {got}").format(
                what=_(OPS[op].words), got=x))
        w = window_of(layer)
        if op == "conv":
            hw = tuple(conv_size(x[1 + i], w.kernel[i], w.stride[i], w.padding[i]) for i in range(2))
            if min(hw) < 1:
                raise ShapeError(_("a {kernel} kernel is larger than the padded {input} input")
                                 .format(kernel=f"{w.kernel[0]}x{w.kernel[1]}",
                                         input=f"{x[1]}x{x[2]}"))
            return (layer["out"], *hw)
        if any(w.padding[i] > w.kernel[i] // 2 for i in range(2)):
            raise ShapeError(_("padding larger than half the kernel"))
        ceil = layer.get("ceil_mode", False)
        hw = tuple(pool_size(x[1 + i], w.kernel[i], w.stride[i], w.padding[i], ceil) for i in range(2))
        if min(hw) < 1:
            raise ShapeError(_("the {input} input is too small for a {kernel} pool").format(
                input=f"{x[1]}x{x[2]}", kernel=f"{w.kernel[0]}x{w.kernel[1]}"))
        return (x[0], *hw)
    if op == "adaptive_avgpool":
        if len(x) != 3 or 0 in x[1:]:
            raise ShapeError(_("an adaptive pool needs a C x H x W input, got {got}").format(got=x))
        return (x[0], *pair(layer["size"]))
    if op in ("lrn", "norm"):
        if len(x) != 3:
            raise ShapeError(_("{what} needs a C x H x W input, got {got}").format(
                what=_(OPS[op].words), got=x))
        return x
    if op == "flatten":
        n = 1
        for d in x:
            n *= d
        return (n,)
    if op == "linear":
        if len(x) != 1:
            raise ShapeError(_("a fully connected layer needs a flat input (flatten first), got "
                               "{got}").format(got=x))
        return (layer["out"],)
    return x  # dropout, relu, bn1d


def tensors(layer, x: Shape, defaults: dict) -> dict[str, tuple]:
    """The state-dict entries of the layer's module (name -> shape), params first. A conv's
    are under ``conv.`` and ``bn.`` (a ConvBN module); BatchNorm's buffers are included."""
    op = layer.op
    if op == "conv":
        bn, bias, _, _ = conv_parts(layer, defaults)
        k, out = pair(layer["kernel"]), layer["out"]
        t = {"conv.weight": (out, x[0], *k)}
        if bias:
            t["conv.bias"] = (out,)
        if bn:
            t.update(bn_tensors("bn.", out))
        return t
    if op == "linear":
        t = {"weight": (layer["out"], x[0])}
        if layer.get("bias", True):
            t["bias"] = (layer["out"],)
        return t
    if op in ("bn1d", "norm"):
        return bn_tensors("", x[0])
    return {}


def bn_tensors(prefix: str, n: int) -> dict[str, tuple]:
    return {f"{prefix}weight": (n,), f"{prefix}bias": (n,), f"{prefix}running_mean": (n,),
            f"{prefix}running_var": (n,), f"{prefix}num_batches_tracked": ()}


BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def is_param(name: str) -> bool:
    return name.rpartition(".")[2] not in BUFFERS


def numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def macs(layer, x: Shape, y: Shape) -> int:
    """Multiply-accumulates of conv and linear layers (BN, pools and adds are not counted)."""
    if layer.op == "conv":
        k = pair(layer["kernel"])
        return numel(y) * k[0] * k[1] * x[0]
    if layer.op == "linear":
        return numel(y) * x[0]
    return 0


def field(layer, f: rf.Field) -> rf.Field:
    """The receptive field after ``layer``, given the one before it."""
    op = layer.op
    if op in ("conv", "maxpool", "avgpool"):
        w = window_of(layer)
        ceil = layer.get("ceil_mode", False)
        return tuple(rf.window(f[i], w.kernel[i], w.stride[i], w.padding[i], 1, ceil)
                     for i in range(2))
    if op == "adaptive_avgpool":
        return tuple(rf.adaptive(a, o) for a, o in zip(f, pair(layer["size"])))
    if op == "flatten":  # what follows (an fc) mixes every position
        return rf.whole_map(f[0]), rf.whole_map(f[1])
    return f


def label(layer) -> tuple[str, str]:
    """(label, style) of one layer, in the papers' words: "1x7 conv, 192", "3x3 max pool /2"."""
    op = layer.op
    if op == "conv":
        w = window_of(layer)
        s = w.stride[0]
        return f"{w.kernel[0]}x{w.kernel[1]} conv, {layer['out']}" + (f" /{s}" if s > 1 else ""), "conv"
    if op in ("maxpool", "avgpool"):
        w = window_of(layer)
        s = w.stride[0]
        return f"{w.kernel[0]}x{w.kernel[0]} {op[:3]} pool" + (f" /{s}" if s > 1 else ""), "pool"
    if op == "adaptive_avgpool":
        o = pair(layer["size"])
        return ("global avg pool" if o == (1, 1) else f"avg pool to {o[0]}x{o[1]}"), "pool"
    if op == "linear":
        return f"fc {layer['out']}", "head"
    if op == "dropout":
        return f"dropout {layer['p']:g}", "head"
    if op == "norm":
        return ("BN + ReLU" if layer.get("act", True) else "BN"), "layer"
    return {"lrn": "LRN", "bn1d": "batch norm", "relu": "ReLU", "flatten": "Flatten"}[op], "layer"


# The kind a table row shows for a layer (blocks show their paper kind).
ROW_KIND = {"conv": "conv", "maxpool": "max pool", "avgpool": "avg pool",
            "adaptive_avgpool": "avg pool", "linear": "fc", "lrn": "localresponsenorm",
            "bn1d": "batchnorm1d", "norm": "batchnorm", "relu": "relu", "dropout": "dropout",
            "flatten": "flatten"}
