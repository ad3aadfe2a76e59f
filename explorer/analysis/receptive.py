"""Receptive fields over the real graph of a network, per axis (height and width apart).

The method of Araujo, Norris and Sim, "Computing Receptive Fields of Convolutional Neural
Networks" (Distill, 2019), for one axis of a layer with kernel k, stride s, padding p and
dilation d, whose input units have field r_in, jump j_in and first centre c_in:

    r_out = r_in + (k_eff - 1) * j_in        with k_eff = d * (k - 1) + 1
    j_out = j_in * s
    c_out = c_in + ((k_eff - 1) / 2 - p) * j_in

``r`` is the field of one unit in input pixels, ``jump`` the input pixels between neighbouring
units, ``start`` the input coordinate of the first unit's centre (pixel centres at 0 .. N-1; it
is negative when padding pushes the first field out past the image's edge).

Tools that add layers up in forward-hook order (torchscan; pytorch-receptive-field assumes a
sequential network) count parallel branches as if they were in series, ignore residual adds and
take the first kernel dimension only, so a 1x7 then 7x1 comes out 13x1 instead of 7x7. Here the
module tree is followed block by block, as each block's forward computes:

- ``Concat``: every branch starts from the block's input; the merge takes, per axis, the hull of
  the branch fields (the largest field when their centres agree), requires one jump, and notes
  centres that do not agree (BN-Inception's stride-2 modules: a padded 3x3/2 conv beside an
  unpadded 3x3/2 pool);
- ``Residual``: branches -> concat -> 1x1 expansion, then the add merges that with the shortcut
  the same way;
- pools with their ``ceil_mode`` (it adds a last, partial window: the output size changes, the
  fields of the units do not); adaptive pools; the global pool and the classifier see the whole
  feature map, hence everything the network sees of the input.

The variant modules have no functional pools or convs in their forward code (every pool is a
module), so the module tree is the whole graph. Anything without a rule raises ``Unsupported``
rather than being guessed. The sizes propagated here are checked against the shapes of a real
forward pass by ``explorer.analysis.rows``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from explorer.variants.blocks import AuxHead, Concat, ConvBN, InceptionNet, Residual

# Layers that act on each position alone (channels mix, space does not).
POINTWISE = (nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.Dropout, nn.Identity,
             nn.LocalResponseNorm)


class Unsupported(ValueError):
    """A module whose spatial effect this analysis has no rule for."""


@dataclass(frozen=True)
class Axis:
    size: int       # units along this axis of the feature map
    rf: int         # input pixels one unit sees
    jump: float     # input pixels between neighbouring units (whole, except adaptive pools)
    start: float    # input coordinate of the first unit's centre
    # only after an adaptive pool with uneven windows: where the last unit's field ends
    last_hi: float | None = None

    @property
    def lo(self) -> float:
        return self.start - (self.rf - 1) / 2

    def extent(self, index: int, input_size: int) -> tuple[int, int]:
        """First and last input pixel that unit ``index`` sees, clipped to the image."""
        lo = self.lo + index * self.jump
        return max(0, math.floor(lo)), min(input_size - 1, math.ceil(lo + self.rf - 1))


Field = tuple[Axis, Axis]   # (height, width)


def window(a: Axis, k: int, s: int, p: int, d: int = 1, ceil_mode: bool = False) -> Axis:
    """A conv or pool along one axis (output size as PyTorch computes it)."""
    if a.last_hi is not None and (k, s, p, d) != (1, 1, 0, 1):
        raise Unsupported("a window over unevenly spaced units (after an adaptive pool)")
    span = d * (k - 1) + 1
    steps = (a.size + 2 * p - span) / s
    size = (math.ceil(steps) if ceil_mode else math.floor(steps)) + 1
    if ceil_mode and (size - 1) * s >= a.size + p:
        size -= 1  # PyTorch drops a last window that would start inside the right padding
    return Axis(size, a.rf + (span - 1) * a.jump, a.jump * s,
                a.start + ((span - 1) / 2 - p) * a.jump, a.last_hi)


def whole_map(a: Axis) -> Axis:
    """Global pooling or a classifier over the flattened map: one unit that sees every unit
    (a pool with k = s = n; the jump of a single unit only says how far such units would be
    apart)."""
    if a.last_hi is None:
        return window(a, a.size, a.size, 0)
    return Axis(1, number(a.last_hi - a.lo + 1), number(a.jump * a.size), (a.lo + a.last_hi) / 2)


def adaptive(a: Axis, out: int) -> Axis:
    """``AdaptiveAvgPool2d`` / ``AdaptiveMaxPool2d``: window i spans [floor(i n / o),
    ceil((i + 1) n / o)). When o divides n that is a plain k = s = n / o pool; otherwise the
    windows are unevenly spaced (GoogLeNet's aux head: 14 -> 4): the first unit's field is
    exact, the jump is their mean, and the last unit's field end is kept for what follows."""
    if a.size % out == 0:
        return window(a, a.size // out, a.size // out, 0)
    if a.last_hi is not None:
        raise Unsupported("an adaptive pool over unevenly spaced units")
    k = math.ceil(a.size / out)
    first = Axis(out, a.rf + (k - 1) * a.jump, number(a.jump * a.size / out),
                 a.start + (k - 1) / 2 * a.jump)
    # the last window always ends at the map's last unit
    return Axis(first.size, first.rf, first.jump, first.start,
                a.lo + (a.size - 1) * a.jump + a.rf - 1)


def merge(axes: list[Axis], where: str, axis: str) -> tuple[Axis, float]:
    """Paths joining (concat or add) along one axis: one jump and one size; the hull of their
    fields, and how far apart their centres are (0 when aligned)."""
    if len({a.jump for a in axes}) > 1 or len({a.size for a in axes}) > 1 or any(
            a.last_hi is not None for a in axes):
        raise Unsupported(f"{where}: paths with different jumps or sizes along {axis} "
                          f"({[(a.jump, a.size) for a in axes]}) cannot be joined")
    lo = min(a.lo for a in axes)
    hi = max(a.lo + a.rf - 1 for a in axes)
    spread = max(a.start for a in axes) - min(a.start for a in axes)
    return Axis(axes[0].size, number(hi - lo + 1), axes[0].jump, (lo + hi) / 2), spread


def number(x: float):
    """An int when whole (JSON shows 37, not 37.0)."""
    return int(x) if float(x).is_integer() else x


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


class _Walker:
    """Follows the module tree as the forward code does, recording each path's output field."""

    def __init__(self):
        self.fields: dict[str, Field] = {}
        self.notes: list[str] = []

    def run(self, m: nn.Module, f: Field, path: str) -> Field:
        f = self._apply(m, f, path)
        if path:
            self.fields[path] = f
        return f

    def _join(self, fields: list[Field], where: str) -> Field:
        (h, dh), (w, dw) = (merge([x[i] for x in fields], where, axis)
                            for i, axis in enumerate(("height", "width")))
        if dh or dw:
            self.notes.append(f"{where}: branch centres differ by {number(dh)} x {number(dw)} "
                              "input px (h x w); its field is the hull of theirs")
        return h, w

    def _apply(self, m: nn.Module, f: Field, path: str) -> Field:
        def sub(name: str) -> str:
            return f"{path}.{name}" if path else name

        if isinstance(m, InceptionNet):
            for name in m.stage_names:
                f = self.run(getattr(m, name), f, sub(name))
            out = self.run(m.head, f, sub("head"))
            for tap, aux_name in m.aux_taps.items():  # aux heads read a block's output
                self.run(getattr(m, aux_name), self.fields[sub(tap)], sub(aux_name))
            return out
        if isinstance(m, Concat):  # Residual included
            branches = [self.run(b, f, sub(f"branches.{n}")) for n, b in m.branches.items()]
            cat = self._join(branches, path)
            self.fields[sub("concat")] = cat
            if not isinstance(m, Residual):
                return cat
            added = self._join([self.run(m.up, cat, sub("up")), f], path)
            self.fields[sub("add")] = added
            return added
        if isinstance(m, ConvBN):
            return self.run(m.conv, f, sub("conv"))
        # Sequentials (ClassifierHead too) and AuxHead run their children in order; a
        # subclass with its own forward might not, so it gets no rule.
        if isinstance(m, AuxHead) or (isinstance(m, nn.Sequential)
                                      and type(m).forward is nn.Sequential.forward):
            for name, child in m.named_children():
                f = self.run(child, f, sub(name))
            return f
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            k, s, p = _pair(m.kernel_size), _pair(m.stride or m.kernel_size), _pair(m.padding)
            d = _pair(getattr(m, "dilation", 1))
            if isinstance(m, nn.Conv2d) and isinstance(m.padding, str):
                raise Unsupported(f"{path}: string padding {m.padding!r}")
            ceil = getattr(m, "ceil_mode", False)
            return tuple(window(f[i], k[i], s[i], p[i], d[i], ceil) for i in range(2))
        if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            out = _pair(m.output_size)
            return tuple(a if o is None else adaptive(a, o) for a, o in zip(f, out))
        if isinstance(m, nn.Flatten):  # what follows (an fc) mixes every position
            return (whole_map(f[0]), whole_map(f[1]))
        if isinstance(m, nn.Linear):
            if f[0].size != 1 or f[1].size != 1:
                raise Unsupported(f"{path}: a Linear on a spatial map (no Flatten before it)")
            return f
        if isinstance(m, POINTWISE):
            return f
        raise Unsupported(f"{path or 'model'}: no receptive-field rule for "
                          f"{type(m).__name__}")


def input_field(height: int, width: int) -> Field:
    return Axis(height, 1, 1, 0), Axis(width, 1, 1, 0)


def fields(model: nn.Module, input_size) -> tuple[dict[str, Field], list[str]]:
    """Every module path's output field (plus ``<block>.concat`` and ``<block>.add`` for the
    joins) for an input of ``input_size`` (n or (height, width)), and notes on joins whose
    branch centres disagree. Raises ``Unsupported`` for a module without a rule, or for a size
    at which parallel paths do not line up."""
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    walker = _Walker()
    walker.fields[""] = walker.run(model, input_field(h, w), "")
    return walker.fields, walker.notes


def sees_whole_input(f: Field, input_size: int) -> bool:
    """Whether the map's central unit sees every input pixel (on both axes)."""
    for a in f:
        lo = a.lo + (a.size - 1) // 2 * a.jump
        if lo > 0 or lo + a.rf - 1 < input_size - 1:
            return False
    return True


# Published receptive fields of the TF-slim models: (receptive field, effective stride,
# effective padding) at named end-points, from google-research/receptive_field (README and
# receptive_field/RECEPTIVE_FIELD_TABLE.md), the code of Araujo, Norris & Sim, Distill 2019.
# Effective padding = how far the first unit's field reaches past the image's top-left edge,
# i.e. (rf - 1) / 2 - rf_offset. Keys: our variant -> {our row name: figures}.
PUBLISHED_SOURCE = ("google-research/receptive_field, RECEPTIVE_FIELD_TABLE.md (TF-slim models; "
                    "Araujo, Norris & Sim, Distill 2019)")
PUBLISHED = {
    "inception_v3": {
        "stem.conv_1a": (3, 2, 0), "stem.conv_2a": (7, 2, 0), "stem.conv_2b": (11, 2, 2),
        "stem.pool_1": (15, 4, 2), "stem.conv_3b": (15, 4, 2), "stem.conv_4a": (23, 4, 2),
        "stem.pool_2": (31, 8, 2), "inception_a.mixed_5b": (63, 8, 18),
        "inception_a.mixed_5c": (95, 8, 34), "inception_a.mixed_5d": (127, 8, 50),
        "reduction_a.mixed_6a": (159, 16, 58), "inception_b.mixed_6b": (351, 16, 154),
        "inception_b.mixed_6c": (543, 16, 250), "inception_b.mixed_6d": (735, 16, 346),
        "inception_b.mixed_6e": (927, 16, 442), "reduction_b.mixed_7a": (1055, 32, 490),
        "inception_c.mixed_7b": (1183, 32, 554), "inception_c.mixed_7c": (1311, 32, 618)},
    "inception_v4": {
        "stem.conv_1a": (3, 2, 0), "stem.conv_2a": (7, 2, 0), "stem.conv_2b": (11, 2, 2),
        "stem.mixed_3a": (15, 4, 2), "stem.mixed_4a": (47, 4, 14), "stem.mixed_5a": (55, 8, 14),
        **{f"inception_a.{i}": (87 + 32 * i, 8, 30 + 16 * i) for i in range(4)},  # Mixed_5b-e
        "reduction_a.0": (215, 16, 86),
        **{f"inception_b.{i}": (407 + 192 * i, 16, 182 + 96 * i) for i in range(7)},  # 6b-h
        "reduction_b.0": (1687, 32, 806),
        **{f"inception_c.{i}": (1815 + 128 * i, 32, 870 + 64 * i) for i in range(3)}},  # 7b-d
    "inception_resnet_v2": {
        "stem.conv_1a": (3, 2, 0), "stem.conv_2a": (7, 2, 0), "stem.conv_2b": (11, 2, 2),
        "stem.pool_3a": (15, 4, 2), "stem.conv_3b": (15, 4, 2), "stem.conv_4a": (23, 4, 2),
        "stem.pool_5a": (31, 8, 2), "stem.mixed_5b": (63, 8, 18),
        "reduction_a.0": (415, 16, 186),             # Mixed_6a
        "inception_resnet_b.19": (2335, 16, 1146),   # PreAuxLogits
        "reduction_b.0": (2399, 32, 1162),           # Mixed_7a
        "head.conv_7b": (3039, 32, 1482)},           # Conv2d_7b_1x1
    # TF-slim's "inception_v2" is BN-Inception. Its SAME padding is asymmetric where the
    # Caffe model (ours) pads both sides alike, so only field and stride are comparable.
    "bn_inception": {
        "stem.conv1": (7, 2, None), "stem.pool1": (11, 4, None),
        "stem.conv2_reduce": (11, 4, None), "stem.conv2": (19, 4, None),
        "stem.pool2": (27, 8, None), "inception_3.inception_3a": (59, 8, None),
        "inception_3.inception_3b": (91, 8, None), "reduction_3.inception_3c": (123, 16, None),
        "inception_4.inception_4a": (187, 16, None), "inception_4.inception_4b": (251, 16, None),
        "inception_4.inception_4c": (315, 16, None), "inception_4.inception_4d": (379, 16, None),
        "reduction_4.inception_4e": (443, 32, None), "inception_5.inception_5a": (571, 32, None),
        "inception_5.inception_5b": (699, 32, None)},
}


def published(variant: str, layout: str | None, name: str, repeats=None) -> tuple | None:
    """The published (field, stride, padding) of one of our rows, or None. The TF-slim models
    are the released layouts at their reference depth (a row's field depends on the blocks
    before it; the input size does not change it). ``layout`` None: the variant's default."""
    from explorer.variants import VARIANTS

    info = VARIANTS.get(variant)
    if info is None or (layout or info.default_layout) != "released" or repeats is not None:
        return None
    return PUBLISHED.get(variant, {}).get(name)
