"""Short ways to write a NetSpec in Python, as the variants do: ``conv(64, 3, padding=1)``,
``concat({"1x1": conv(64, 1), "3x3": [conv(48, 1), conv(64, 3, padding=1)]}, ...)``.

A branch is a layer or a list of layers (or nested concats); a stage's blocks are a dict (their
names) or a list (numbered 0, 1, ...). Layers state their output channels only.
"""

from __future__ import annotations

from explorer.core.i18n import N_
from explorer.spec.netspec import Block, Head, Info, Layer, Stage


def conv(out: int, kernel, stride=None, padding=None, **options) -> Layer:
    """Conv (+ BN + ReLU by the network's defaults; ``bn``, ``bias``, ``act``, ``eps`` differ)."""
    return Layer("conv", out=out, kernel=kernel, stride=None if stride == 1 else stride,
                 padding=None if padding == 0 else padding, **options)


def maxpool(kernel, stride=None, padding=None, *, ceil_mode=None) -> Layer:
    return Layer("maxpool", kernel=kernel, stride=stride, padding=padding or None,
                 ceil_mode=ceil_mode or None)


def avgpool(kernel, stride=None, padding=None, *, ceil_mode=None, count_include_pad=None) -> Layer:
    return Layer("avgpool", kernel=kernel, stride=stride, padding=padding or None,
                 ceil_mode=ceil_mode or None,
                 count_include_pad=None if count_include_pad in (None, True) else False)


def layer(op: str, **args) -> Layer:
    return Layer(op, **args)


def _branch(b) -> tuple:
    return tuple(b) if isinstance(b, (list, tuple)) else (b,)


def concat(branches: dict, kind: str = "", figure: str = "", idea: str = "") -> Block:
    return Block("concat", tuple((n, _branch(b)) for n, b in branches.items()),
                 Info(kind, figure, idea))


def residual(branches: dict, scale: float, kind: str = "", figure: str = "", idea: str = "", *,
             act: bool = True, expand: bool = True, shortcut=(), pre=()) -> Block:
    """branches -> concat -> linear 1x1 expansion to the input's channels -> x scale -> + input
    (-> ReLU unless ``act`` is False). A ResNet block: ``expand=False``, ``shortcut`` a
    projection's layers (or none), ``pre`` the pre-activation layers."""
    return Block("residual", tuple((n, _branch(b)) for n, b in branches.items()),
                 Info(kind, figure, idea), float(scale), act, expand, _branch(shortcut) if
                 shortcut else (), _branch(pre) if pre else ())


def norm(*, act: bool = True, eps: float | None = None) -> Layer:
    """Batch norm (-> ReLU) on its own: the pre-activation ResNet's BN before each conv."""
    return Layer("norm", act=None if act else False, eps=eps)


def split(out: int, figure: str) -> Block:
    """1x3 and 3x1 convs side by side on the same input: the expanded filter bank of the
    coarsest grid (v4 paper, Figure 6; Rethinking, Figure 7), a concat inside a branch."""
    return concat({"1x3": conv(out, (1, 3), padding=(0, 1)), "3x1": conv(out, (3, 1), padding=(1, 0))},
                  "split", figure, N_("the last convs split into 1x3 and 3x1 in parallel"))


def stage(name: str, blocks, kind: str, figure: str = "", idea: str = "") -> Stage:
    items = blocks.items() if isinstance(blocks, dict) else ((str(i), b) for i, b in enumerate(blocks))
    return Stage(name, tuple(items), Info(kind, figure, idea))


def head(layers: dict, kind: str = "head", figure: str = "", idea: str = "", *, name="head",
         tap: str | None = None) -> Head:
    return Head(name, tuple(layers.items()), Info(kind, figure, idea), tap)


def classifier_head(num_classes: int, dropout: float, *, pre: dict | None = None,
                    post: dict | None = None) -> Head:
    """``pre``: layers before the pool (IR-v2's 1x1 conv to 1536); ``post``: layers between
    dropout and the fc (facenet's 512-d embedding)."""
    layers = dict(pre or {})
    layers["pool"] = Layer("adaptive_avgpool", size=1)
    layers["flatten"] = Layer("flatten")
    layers["dropout"] = Layer("dropout", p=dropout)
    layers.update(post or {})
    layers["fc"] = Layer("linear", out=num_classes)
    return head(layers, "head", idea=N_("global average pooling replaces the big fully connected "
                   "layers of earlier networks"))


class Widths:
    """Scales every channel count of a builder by the ``width`` multiplier (1.0 = reference)."""

    def __init__(self, width: float = 1.0):
        self.width = float(width)

    def __call__(self, channels: int) -> int:
        return max(1, int(round(channels * self.width)))


def network(stages: dict, head_: Head, aux=(), *, bn: bool = True, eps: float = 1e-3):
    """A NetSpec from stages (name -> Stage, in order), a head and auxiliary heads; ``bn`` and
    ``eps``: the convolutions' defaults. ``describe`` fills in the variant, layout, config and
    native input size."""
    from explorer.spec.netspec import NetSpec

    return NetSpec(tuple(stages.values()), head_, tuple(aux), defaults=(("bn", bn), ("eps", eps)))
