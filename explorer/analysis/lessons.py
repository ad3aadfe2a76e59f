"""The arithmetic behind the Inception papers' design rules, computed (for the Learn page).

MACs are multiply-accumulates of convolutions (1 MAC = 2 FLOPs), as everywhere in the explorer.
Published numbers below are quoted from the papers with their source; the app puts our own
measured MACs beside them.

Words: a table's column names and its words are English, marked with ``N_`` (the page says them
with ``explorer.ui.tables.translated``); sentences and text with numbers in them are made in the
run's language (English outside a page).
"""

from __future__ import annotations

from explorer.core.i18n import N_, _
from explorer.spec.compose import concat, conv, head, maxpool, network, stage
from explorer.spec.netspec import Layer, NetSpec

RETHINKING = "Rethinking the Inception Architecture (arXiv 1512.00567)"
V4_PAPER = "Inception-v4, Inception-ResNet and the Impact of Residual Connections (arXiv 1602.07261)"


def conv_macs(out_size: int, c_in: int, c_out: int, kh: int, kw: int | None = None) -> int:
    """MACs of a kh x kw convolution producing c_out x out_size x out_size from c_in channels."""
    return out_size * out_size * c_out * c_in * kh * (kh if kw is None else kw)


def factorize_5x5(channels: int, grid: int) -> dict:
    """One 5x5 conv vs two stacked 3x3 convs (same receptive field, same channels, padded)."""
    five = conv_macs(grid, channels, channels, 5)
    two_threes = 2 * conv_macs(grid, channels, channels, 3)
    return {"5x5": five, N_("two 3x3"): two_threes, "saving": 1 - two_threes / five}


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
        (N_("conv, then pool (Figure 9, right)"), conv_macs(d, k, 2 * k, 3), min(k * d * d, out)),
        (N_("pool, then conv (Figure 9, left)"), conv_macs(h, k, 2 * k, 3), k * h * h),
        (N_("stride-2 conv beside a pool, concat (Figure 10)"), conv_macs(h, k, k, 3), min(k * d * d, out)),
    ]
    first = ways[0][1]
    return [{N_("method"): name, "MACs": macs, N_("relative cost"): macs / first,
             N_("output"): f"{2 * k} x {h} x {h}", N_("narrowest representation"): narrow,
             N_("bottleneck"): narrow < out}
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
    (N_("+ label smoothing"), 22.8, 6.1, 3.8, ("inception_v2", "paper")),
    (N_("+ factorized 7x7"), 21.6, 5.8, 4.8, ("inception_v3", "paper")),
    ("+ BN-auxiliary (= Inception-v3)", 21.2, 5.6, 4.8, ("inception_v3", "paper")),
)

# Inception-v4 paper, single model: (network, our variant, single crop top-1 / top-5 error %,
# 144 crops top-1 / top-5 error % or None). Tables 2 and 4; Table 4 lists ResNet-151 with He et
# al.'s own dense (fully convolutional, multi-scale) evaluation, and no single-crop figure.
V4_RESULTS = (
    ("ResNet-151 (dense)", "resnet152", None, None, 19.4, 4.5),
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
    return {N_("receptive field"): " x ".join(map(str, last.rf)),
            N_("jump"): " x ".join(map(str, last.jump)),
            "MACs": sum(r.macs for r in rows if not r.name.startswith("net.0")),
            N_("output"): " x ".join(map(str, last.output_shape))}


def _convs(channels: int, *specs) -> list:
    """Convs of ``channels`` to ``channels``, (kernel, padding) each, in sequence."""
    return [conv(channels, k, padding=p) for k, p in specs]


def factorization_fields(channels: int, grid: int, n: int | None = None) -> list[dict]:
    """The two sides of a factorization measured as networks: a 5x5 vs two 3x3 (``n`` None),
    or an n x n vs 1 x n then n x 1. Same field, different MACs."""
    if n is None:
        pairs = (("5x5", _convs(channels, (5, 2))),
                 (N_("two 3x3"), _convs(channels, (3, 1), (3, 1))))
    else:
        h = n // 2  # "same" padding; an even n shifts the centre but keeps the field
        pairs = ((f"{n}x{n}", _convs(channels, (n, h))),
                 (N_("1x{n} then {n}x1").format(n=n), _convs(channels, ((1, n), (0, h)), ((n, 1), (h, 0)))))
    return [{N_("convolution"): name, **_measured(layers, channels, grid)} for name, layers in pairs]


def reduction_fields(channels: int, grid: int) -> list[dict]:
    """The three grid reductions of ``grid_reduction`` built as networks (3x3 convs, 3x3/2 max
    pools, no padding on the stride-2 steps): field and jump before (one input unit) and after,
    in units of the input grid."""
    k = channels
    ways = (
        (N_("conv, then pool"), [conv(2 * k, 3, padding=1), maxpool(3, 2)]),
        (N_("pool, then conv"), [maxpool(3, 2), conv(2 * k, 3, padding=1)]),
        (N_("stride-2 conv beside a pool"), [concat({"conv": conv(k, 3, 2), "pool": maxpool(3, 2)})]),
    )
    out = []
    for name, layers in ways:
        m = _measured(layers, k, grid)
        out.append({N_("method"): name, N_("field before"): "1 x 1", N_("jump before"): "1 x 1",
                    N_("field after"): m["receptive field"], N_("jump after"): m["jump"],
                    "MACs": m["MACs"], N_("output"): m["output"]})
    return out


# -- one number format for the Learn page ------------------------------------------------------

MISSING = "–"  # a value the source does not give


def fmt_factor(x: float) -> str:
    """A growth factor: "x1.37", "x1,048,576" (thousands separated, no decimals from 100 up)."""
    return f"x{x:,.0f}" if x >= 100 else f"x{x:,.2f}"


def plain_cell(text: str) -> str:
    """A table cell's text as itself: st.table reads cells as Markdown, where a leading "+ ",
    "- ", "* " or "1. " starts a list ("+ RMSProp" drew a bullet). The marker is escaped."""
    import re
    m = re.match(r"^(\s*)([-+*]|\d+(?=[.)]))(.*)$", text, re.S)
    if not m or not re.match(r"^[.)]?\s", m.group(3)):
        return text
    head, marker, rest = m.groups()
    if marker.isdigit():
        return f"{head}{marker}\\{rest}"
    return f"{head}\\{marker}{rest}"


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
            elif isinstance(v, bool):
                cells[col] = N_("yes") if v else N_("no")
            elif isinstance(v, str):
                cells[col] = plain_cell(v)
            elif isinstance(v, int):
                cells[col] = f"{v:,}"
            elif isinstance(v, float):
                cells[col] = f"{v:,.{decimals.get(col, 2)}f}"
            else:
                cells[col] = str(v)
        out.append(cells)
    return out


# -- Rethinking's own claims, computed (section 6: "42 layers deep", "about 2.5 times") ---------

# The paper does not say how it counts layers. This count gives its 42 on its own Table 1:
# the layers with weights on the network's deepest path, where a 1 x n conv followed by an
# n x 1 conv counts as the one n x n layer it replaces (section 3.2), and parallel convs
# (Figure 7's 1x3 beside 3x1) as one; pools, the classifier and the auxiliary head are not
# counted. So each stem conv is one layer, and every Figure 5, 6 and 7 module and every
# Figure 10 grid reduction is three deep.
DEPTH_RULE = N_("layers with weights on the deepest path; a 1 x n conv then an n x 1 conv count "
                 "as the one n x n layer they replace, parallel convs (1x3 beside 3x1) as one; "
                 "pools and the classifier not counted")


def _kernel(layer) -> tuple[int, int]:
    k = layer.get("kernel", 1)
    return (k, k) if isinstance(k, int) else tuple(k)


def _is_pair(a, b) -> bool:
    """A 1 x n conv and an n x 1 conv in a row (either order): one factorized n x n layer."""
    if not (isinstance(a, Layer) and isinstance(b, Layer) and a.op == b.op == "conv"):
        return False
    ka, kb = _kernel(a), _kernel(b)
    return ka[0] != ka[1] and ka == kb[::-1]


def _sequence_depth(items) -> int:
    depth, i = 0, 0
    while i < len(items):
        if i + 1 < len(items) and _is_pair(items[i], items[i + 1]):
            depth, i = depth + 1, i + 2
        else:
            depth, i = depth + layer_depth(items[i]), i + 1
    return depth


def layer_depth(item) -> int:
    """The depth in layers, counted by ``DEPTH_RULE``, of a spec's layer or block."""
    if isinstance(item, Layer):
        return 1 if item.op in ("conv", "linear") else 0
    deepest = max(_sequence_depth(branch) for _, branch in item.branches)
    return deepest + 1 if item.op == "residual" else deepest  # + the linear 1x1 expansion


def network_depth(spec: NetSpec) -> dict:
    """Depth by ``DEPTH_RULE`` of each stage of ``spec`` (the head and auxiliary heads left
    out) and in all."""
    stages = {s.name: _sequence_depth([b for _, b in s.blocks]) for s in spec.stages}
    return {"stages": stages, "total": sum(stages.values())}


# GoogLeNet's cost as its own paper gives it, and what Rethinking says of its network (section 6)
RETHINKING_CLAIMS = {"depth": 42, "cost_ratio": 2.5, "googlenet_gmacs": 1.5}


def rethinking_claims(v3_paper: NetSpec, v3_paper_macs: int, googlenet_macs: int,
                      table3_cost: tuple[float, float] = (4.8, 1.5)) -> list[dict]:
    """The paper's claims about its network beside what we compute on our build of its Table 1
    (``v3_paper``: Inception-v3's paper layout; MACs at 299 and GoogLeNet's at 224). The keys
    are English; the values are in the run's language."""
    depth = network_depth(v3_paper)
    ratio = v3_paper_macs / googlenet_macs
    claim, says, computed, how = N_("claim"), N_("the paper says"), N_("computed here"), N_("how")
    return [
        {claim: _("depth in layers"), says: _("42 (section 6)"),
         computed: f"{depth['total']}",
         how: _("our build of Table 1, counting {rule} ({stages})").format(
             rule=_(DEPTH_RULE),
             stages=" + ".join(f"{n} {d}" for n, d in depth["stages"].items()))},
        {claim: _("cost vs GoogLeNet"),
         says: _("about {ratio}x (section 6)").format(ratio=RETHINKING_CLAIMS["cost_ratio"]),
         computed: _("{ratio}x ({ours} G vs {googlenet} G MACs)").format(
             ratio=f"{ratio:.1f}", ours=f"{v3_paper_macs / 1e9:.2f}",
             googlenet=f"{googlenet_macs / 1e9:.2f}"),
         how: _("MACs of conv and linear layers of our builds: Table 1 at 299 px (widths the "
                "paper leaves out taken from the release) vs GoogLeNet (paper layout) at 224 px")},
        {claim: _("cost vs GoogLeNet, the paper's own Table 3"),
         says: _("{ours} vs {googlenet} G ops = {ratio}x").format(
             ours=table3_cost[0], googlenet=table3_cost[1],
             ratio=f"{table3_cost[0] / table3_cost[1]:.1f}"),
         computed: _("gap to the 2.5x claim: {gap}x").format(
             gap=f"{ratio / RETHINKING_CLAIMS['cost_ratio']:.1f}"),
         how: _("the paper's cost column (Table 3) disagrees with its own section 6 as well")},
    ]


# -- Rethinking, section 2: four general design principles, each with what we compute ----------

def _values(shape) -> int:
    out = 1
    for s in shape:
        out *= s
    return out


def representation_sizes(rows: list[dict]) -> list[dict]:
    """Principle 1 (avoid representational bottlenecks, especially early): the values of each
    block's output (C x H x W) along the depth, and its change from the block before."""
    out, before = [], None
    for r in rows:
        if len(r["output_shape"]) != 3 or r["name"].startswith("head"):  # past the features
            continue
        size = _values(r["output_shape"])
        out.append({N_("block"): r["name"], N_("output"): " x ".join(map(str, r["output_shape"])),
                    N_("values"): size,
                    N_("vs the block before"): None if before is None else size / before})
        before = size
    return out


def sharpest_shrink(sizes: list[dict]) -> dict:
    """The step of ``representation_sizes`` where the representation shrinks most."""
    return min(sizes[1:], key=lambda r: r["vs the block before"])


def widest_per_grid(rows: list[dict]) -> list[dict]:
    """Principle 2 (higher-dimensional representations are easier to process locally): the
    most channels at each grid size, from the largest grid to the smallest."""
    best: dict[int, int] = {}
    for r in rows:
        if len(r["output_shape"]) == 3 and not r["name"].startswith("head"):
            c, h, _ = r["output_shape"]
            best[h] = max(best.get(h, 0), c)
    return [{N_("grid"): f"{h} x {h}", N_("channels"): c}
            for h, c in sorted(best.items(), reverse=True)]


def reduced_aggregation(block, branch: str, in_channels: int, grid: int) -> dict:
    """Principle 3 (spatial aggregation over lower-dimensional embeddings): ``branch`` of the
    spec's ``block`` (reading ``in_channels``) reduces its input with a 1x1 conv before its
    spatial conv; its MACs beside those of the same spatial conv on the unreduced input, at
    ``grid`` x ``grid``."""
    reduce, spatial = block.branch(branch)[:2]
    kh, kw = _kernel(spatial)
    c_in, c_mid, c_out = in_channels, reduce["out"], spatial["out"]
    with_1x1 = conv_macs(grid, c_in, c_mid, 1) + conv_macs(grid, c_mid, c_out, kh, kw)
    direct = conv_macs(grid, c_in, c_out, kh, kw)
    return {"input channels": c_in, "reduced to": c_mid,
            "spatial conv": _("{kernel} to {channels}").format(kernel=f"{kh}x{kw}", channels=c_out),
            "MACs with the 1x1": with_1x1, "MACs without": direct, "ratio": direct / with_1x1}


def width_and_depth(items) -> list[dict]:
    """Principle 4 (balance width and depth): ``items`` of (network, NetSpec, analysis dict at
    stage depth); depth by ``DEPTH_RULE``, width = the channels of the last feature map."""
    out = []
    for title, spec, analysis in items:
        last = [r for r in analysis["rows"]
                if len(r["output_shape"]) == 3 and not r["name"].startswith("head")][-1]
        depth = network_depth(spec)["total"]
        out.append({N_("network"): title, N_("depth (layers)"): depth,
                    N_("width (last channels)"): last["output_shape"][0],
                    "GMACs": analysis["total_macs"] / 1e9,
                    N_("params (M)"): analysis["total_params"] / 1e6})
    return out


def v4_stem_stride_note(variant: str, row: dict, figure: str) -> str | None:
    """The v4 paper's Figure 3 draws the stem's last conv "192 V" (stride 1, valid), beside a
    stride-2 max pool: a stride-1 valid 3x3 on 71x71 gives 69x69, which cannot be
    concatenated with the pool's 35x35; the 35x35 the figure states needs stride 2. Said on
    that block (read from its measured shapes), for the networks built with that stem. In the
    run's language."""
    if not (row["name"].endswith("mixed_5a") and "Figure 3" in (figure or "")):
        return None
    h_in, h_out = row["input_shape"][-1], row["output_shape"][-1]
    stride_1 = h_in - 2
    return _("Figure 3 draws this block's conv as \"3x3 conv (192 V)\", which reads as stride 1; "
             "on the {input} input that gives {stride_1}, which cannot join the stride-2 max pool's "
             "{output} (nor reach the figure's 35x35). The conv must have stride 2, and {variant} "
             "here does: {input} -> {output}, measured.").format(
                 input=f"{h_in}x{h_in}", stride_1=f"{stride_1}x{stride_1}",
                 output=f"{h_out}x{h_out}", variant=variant)
