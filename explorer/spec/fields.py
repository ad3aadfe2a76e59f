"""Receptive fields, one axis at a time (Araujo, Norris and Sim, "Computing Receptive Fields of
Convolutional Neural Networks", Distill 2019). For one axis of a layer with kernel k, stride s,
padding p and dilation d, whose input units have field r_in, jump j_in and first centre c_in:

    r_out = r_in + (k_eff - 1) * j_in        with k_eff = d * (k - 1) + 1
    j_out = j_in * s
    c_out = c_in + ((k_eff - 1) / 2 - p) * j_in

``rf`` is the field of one unit in input pixels, ``jump`` the input pixels between neighbouring
units, ``start`` the input coordinate of the first unit's centre (pixel centres at 0 .. N-1; it
is negative when padding pushes the first field out past the image's edge). Where paths join
(concat, add) the field is the hull of theirs; the jumps must agree; centres that disagree are
noted. The walk (``explorer.spec.walk``) applies these at every op of a NetSpec.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from explorer.core.i18n import N_

# Why fields stop (an analysis's notes, kept in English: a page says them with
# explorer.core.i18n.again(note, *NOTES))
UNEVEN_WINDOW = N_("a window over unevenly spaced units (after an adaptive pool)")
UNEVEN_POOL = N_("an adaptive pool over unevenly spaced units")
CANNOT_JOIN = N_("{where}: paths with different jumps or sizes along {axis} ({paths}) cannot be "
                 "joined")
NOTES = (UNEVEN_WINDOW, UNEVEN_POOL, CANNOT_JOIN, N_("height"), N_("width"))


class Unsupported(ValueError):
    """A place where fields cannot be followed (paths with different jumps joined)."""


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
        raise Unsupported(UNEVEN_WINDOW)
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
        raise Unsupported(UNEVEN_POOL)
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
        raise Unsupported(CANNOT_JOIN.format(where=where, axis=axis,
                                             paths=[(a.jump, a.size) for a in axes]))
    lo = min(a.lo for a in axes)
    hi = max(a.lo + a.rf - 1 for a in axes)
    spread = max(a.start for a in axes) - min(a.start for a in axes)
    return Axis(axes[0].size, number(hi - lo + 1), axes[0].jump, (lo + hi) / 2), spread


def number(x: float):
    """An int when whole (JSON shows 37, not 37.0)."""
    return int(x) if float(x).is_integer() else x


def input_field(height: int, width: int) -> Field:
    return Axis(height, 1, 1, 0), Axis(width, 1, 1, 0)


def sees_whole_input(f: Field, input_size: int) -> bool:
    """Whether the map's central unit sees every input pixel (on both axes)."""
    for a in f:
        lo = a.lo + (a.size - 1) // 2 * a.jump
        if lo > 0 or lo + a.rf - 1 < input_size - 1:
            return False
    return True
