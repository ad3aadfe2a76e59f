"""The arithmetic behind the Inception papers' design rules, computed (for the Learn page).

MACs are multiply-accumulates of convolutions (1 MAC = 2 FLOPs), as everywhere in the explorer.
Published numbers below are quoted from the papers with their source; the app puts our own
measured MACs beside them.
"""

from __future__ import annotations

from explorer.spec.compose import concat, conv, head, maxpool, network, stage
from explorer.spec.netspec import NetSpec

RETHINKING = "Rethinking the Inception Architecture (arXiv 1512.00567)"
V4_PAPER = "Inception-v4, Inception-ResNet and the Impact of Residual Connections (arXiv 1602.07261)"


def conv_macs(out_size: int, c_in: int, c_out: int, kh: int, kw: int | None = None) -> int:
    """MACs of a kh x kw convolution producing c_out x out_size x out_size from c_in channels."""
    return out_size * out_size * c_out * c_in * kh * (kh if kw is None else kw)


def factorize_5x5(channels: int, grid: int) -> dict:
    """One 5x5 conv vs two stacked 3x3 convs (same receptive field, same channels, padded)."""
    five = conv_macs(grid, channels, channels, 5)
    two_threes = 2 * conv_macs(grid, channels, channels, 3)
    return {"5x5": five, "two 3x3": two_threes, "saving": 1 - two_threes / five}


def factorize_asymmetric(n: int, channels: int, grid: int) -> dict:
    """An n x n conv vs a 1 x n conv followed by an n x 1 conv (Rethinking, section 3.2)."""
    square = conv_macs(grid, channels, channels, n)
    pair = conv_macs(grid, channels, channels, 1, n) + conv_macs(grid, channels, channels, n, 1)
    return {"n x n": square, "1 x n + n x 1": pair, "saving": 1 - pair / square}


def reduced(grid: int) -> int:
    """Output side of a 3x3 stride-2 unpadded conv or pool (35 -> 17, 17 -> 8)."""
    return (grid - 3) // 2 + 1


def grid_reduction(channels: int, grid: int) -> list[dict]:
    """Three ways from k x d x d to 2k x d/2 x d/2 (Rethinking, Figures 9 and 10), 3x3 convs.

    "narrowest" is the smallest representation on the way, in values: pooling first squeezes
    the grid before the channels grow (the representational bottleneck the paper warns of).
    """
    k, d, h = channels, grid, reduced(grid)
    out = 2 * k * h * h
    ways = [
        ("conv, then pool (Figure 9, right)", conv_macs(d, k, 2 * k, 3), min(k * d * d, out)),
        ("pool, then conv (Figure 9, left)", conv_macs(h, k, 2 * k, 3), k * h * h),
        ("stride-2 conv beside a pool, concat (Figure 10)", conv_macs(h, k, k, 3), min(k * d * d, out)),
    ]
    first = ways[0][1]
    return [{"method": name, "MACs": macs, "relative cost": macs / first,
             "output": f"{2 * k} x {h} x {h}", "narrowest representation": narrow,
             "bottleneck": narrow < out}
            for name, macs, narrow in ways]


def residual_blocks(spec: NetSpec) -> list[dict]:
    """Each residual block's scale (and whether a ReLU follows its add), in network order, of a
    NetSpec (or a model built from one)."""
    spec = getattr(spec, "spec", spec)
    return [{"block": f"{s.name}.{name}", "scale": float(b.scale), "relu": b.act}
            for s in spec.stages for name, b in s.blocks if getattr(b, "op", "") == "residual"]


def std_growth(scales) -> float:
    """Toy model: how much the std of x grows through adds x + s * f(x), one per scale s, with
    f(x) of x's variance and independent of it (no normalisation on the sums, as in
    Inception-ResNet): the product of sqrt(1 + s^2)."""
    growth = 1.0
    for s in scales:
        growth *= (1 + s * s) ** 0.5
    return growth


def label_smoothing(num_classes: int, eps: float, true_class: int = 0) -> list[float]:
    """q'(k) = (1 - eps) * [k == y] + eps / K (Rethinking, section 7)."""
    return [(1 - eps) * (k == true_class) + eps / num_classes for k in range(num_classes)]


# Rethinking, Table 3: the cumulative ablation from GoogLeNet to Inception-v3 (single crop).
# (step, top-1 error %, top-5 error % or None, paper's cost in G ops, our (variant, layout))
ABLATION = (
    ("GoogLeNet", 29.0, 9.2, 1.5, ("googlenet", "paper")),
    ("BN-GoogLeNet", 26.8, None, 1.5, ("googlenet", "released")),
    ("BN-Inception", 25.2, 7.8, 2.0, ("bn_inception", "released")),
    ("Inception-v2", 23.4, None, 3.8, ("inception_v2", "paper")),
    ("+ RMSProp", 23.1, 6.3, 3.8, ("inception_v2", "paper")),
    ("+ label smoothing", 22.8, 6.1, 3.8, ("inception_v2", "paper")),
    ("+ factorized 7x7", 21.6, 5.8, 4.8, ("inception_v3", "paper")),
    ("+ BN-auxiliary (= Inception-v3)", 21.2, 5.6, 4.8, ("inception_v3", "paper")),
)

# Inception-v4 paper, single model: (network, our variant, single crop top-1 / top-5 error %,
# 144 crops top-1 / top-5 error % or None).
V4_RESULTS = (
    ("BN-Inception", "bn_inception", 25.2, 7.8, None, None),
    ("Inception-v3", "inception_v3", 21.2, 5.6, 18.9, 4.3),
    ("Inception-ResNet-v1", "inception_resnet_v1", 21.3, 5.5, 18.8, 4.3),
    ("Inception-v4", "inception_v4", 20.0, 5.0, 17.7, 3.8),
    ("Inception-ResNet-v2", "inception_resnet_v2", 19.9, 4.9, 17.8, 3.7),
)


# -- receptive fields, measured by the same analysis as the networks ------------------------------

def _measured(layers: list, channels: int, grid: int) -> dict:
    """Field, jump and MACs of ``layers`` (spec layers) by ``explorer.analyze``. analyze feeds
    an RGB image, so a 1x1 conv lifts it to ``channels`` first: it adds no field, and its MACs
    are left out."""
    from explorer.analysis.rows import analyze

    blocks = [conv(channels, 1), *layers]
    spec = network({"net": stage("net", blocks, "stage")}, head({}))
    rows = analyze(spec, input_size=grid, depth="layer").rows
    last = rows[-1]
    return {"receptive field": " x ".join(map(str, last.rf)),
            "jump": " x ".join(map(str, last.jump)),
            "MACs": sum(r.macs for r in rows if not r.name.startswith("net.0")),
            "output": " x ".join(map(str, last.output_shape))}


def _convs(channels: int, *specs) -> list:
    """Convs of ``channels`` to ``channels``, (kernel, padding) each, in sequence."""
    return [conv(channels, k, padding=p) for k, p in specs]


def factorization_fields(channels: int, grid: int, n: int | None = None) -> list[dict]:
    """The two sides of a factorization measured as networks: a 5x5 vs two 3x3 (``n`` None),
    or an n x n vs 1 x n then n x 1. Same field, different MACs."""
    if n is None:
        pairs = (("5x5", _convs(channels, (5, 2))),
                 ("two 3x3", _convs(channels, (3, 1), (3, 1))))
    else:
        h = n // 2  # "same" padding; an even n shifts the centre but keeps the field
        pairs = ((f"{n}x{n}", _convs(channels, (n, h))),
                 (f"1x{n} then {n}x1", _convs(channels, ((1, n), (0, h)), ((n, 1), (h, 0)))))
    return [{"convolution": name, **_measured(layers, channels, grid)} for name, layers in pairs]


def reduction_fields(channels: int, grid: int) -> list[dict]:
    """The three grid reductions of ``grid_reduction`` built as networks (3x3 convs, 3x3/2 max
    pools, no padding on the stride-2 steps): field and jump before (one input unit) and after,
    in units of the input grid."""
    k = channels
    ways = (
        ("conv, then pool", [conv(2 * k, 3, padding=1), maxpool(3, 2)]),
        ("pool, then conv", [maxpool(3, 2), conv(2 * k, 3, padding=1)]),
        ("stride-2 conv beside a pool", [concat({"conv": conv(k, 3, 2), "pool": maxpool(3, 2)})]),
    )
    out = []
    for name, layers in ways:
        m = _measured(layers, k, grid)
        out.append({"method": name, "field before": "1 x 1", "jump before": "1 x 1",
                    "field after": m["receptive field"], "jump after": m["jump"],
                    "MACs": m["MACs"], "output": m["output"]})
    return out


# -- one number format for the Learn page ------------------------------------------------------

MISSING = "–"  # a value the source does not give


def fmt_factor(x: float) -> str:
    """A growth factor: "x1.37", "x1,048,576" (thousands separated, no decimals from 100 up)."""
    return f"x{x:,.0f}" if x >= 100 else f"x{x:,.2f}"


def formatted(rows: list[dict], decimals: dict[str, int] | None = None) -> list[dict]:
    """Rows as display text: integers with thousands separators, floats with ``decimals[col]``
    places (default 2), None as "–", the rest as is."""
    decimals = decimals or {}
    out = []
    for row in rows:
        cells = {}
        for col, v in row.items():
            if v is None:
                cells[col] = MISSING
            elif isinstance(v, bool) or isinstance(v, str):
                cells[col] = "yes" if v is True else "no" if v is False else v
            elif isinstance(v, int):
                cells[col] = f"{v:,}"
            elif isinstance(v, float):
                cells[col] = f"{v:,.{decimals.get(col, 2)}f}"
            else:
                cells[col] = str(v)
        out.append(cells)
    return out
