"""Plotly figures and display tables built from analysis dicts (``Analysis.to_dict()``) and
compare rows: pure functions, testable without Streamlit."""

from __future__ import annotations

from datetime import date

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.core.i18n import FONT_FAMILY, N_, _
from explorer.core.text import shape_text

MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


def _cjk(fig: go.Figure) -> go.Figure:
    """Name fonts that draw Hangul: Korean titles and labels, on screen and in the PNG export."""
    return fig.update_layout(font_family=FONT_FAMILY)


def fmt_count(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:g}"


def fmt_bytes(n: float) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def short_title(title: str) -> str:
    """"BN-Inception (the v4 paper's Inception-v2)" -> "BN-Inception"."""
    return title.split(" (")[0]


def arxiv_month(arxiv: str) -> date:
    """arXiv ids start with YYMM: "1409.4842" -> 2014-09-01."""
    return date(2000 + int(arxiv[:2]), int(arxiv[2:4]), 1)


def field_text(pair) -> str:
    """A per-axis (h, w) pair as "7 x 7" ("-" when there is none)."""
    return " x ".join(f"{v:g}" for v in pair) if pair else "-"


def table_records(result: dict) -> list[dict]:
    """The per-row table: shapes as "C x H x W" text, numbers kept numeric (sortable). The
    first row whose central unit sees the whole input has its field marked with a star."""
    whole = result.get("rf_whole_input")
    return [{"name": r["name"], "kind": r["kind"], "output": shape_text(r["output_shape"]),
             "params": r["params"], "bn_params": r.get("bn_params", 0), "MACs": r["macs"],
             "MACs %": 100 * r["macs_share"],
             "RF (px)": field_text(r.get("rf")) + (" ★" if r["name"] == whole else ""),
             "jump (px)": field_text(r.get("jump")),
             "params %": 100 * r["params_share"], "input": shape_text(r["input_shape"]),
             "activation KiB": r["activation_bytes"] / 1024,
             "figure": _(r["figure"]) if r["figure"] else r["figure"]}  # a figure in words: said
            for r in result["rows"]]


def name_width(result: dict, px_per_char: int = 8, most: int = 380) -> int:
    """Pixels for the table's name column to show its longest name whole (a projector's
    1280x720 leaves no room for a hover to read a cut name)."""
    longest = max((len(r["name"]) for r in result["rows"]), default=4)
    return min(most, px_per_char * longest + 24)


def timeline(rows: list[dict]) -> go.Figure:
    """The family over time: arXiv month vs MACs, marker area ~ parameters.

    Networks of one paper share its date (v2 and v3; v4 and both Inception-ResNets); their
    labels are placed apart so that they stay readable.
    ``rows``: dicts with title, arxiv, total_macs, total_params and top1 (or None).
    """
    fig = go.Figure()
    # the ResNet baselines (``baseline`` rows): small grey squares labelled by their depth only
    # ("50", "v2-101"; the hover and the title name them), so that the Inception papers' labels
    # keep their places beside them
    papers = sorted({r["arxiv"] for r in rows if not r.get("baseline")})
    top = max(r["total_macs"] for r in rows)
    for r in rows:
        if r.get("baseline"):
            fig.add_trace(go.Scatter(
                x=[arxiv_month(r["arxiv"])], y=[r["total_macs"] / 1e9], mode="markers+text",
                name=short_title(r["title"]),
                text=[short_title(r["title"]).removeprefix("ResNet-")],
                textposition="middle right", textfont={"size": 13, "color": "#666666"},
                marker={"size": 9, "opacity": 0.7, "symbol": "square", "color": "#888888"},
                hovertemplate=(f"<b>{r['title']}</b><br>arXiv {r['arxiv']}<br>%{{y:.2f}} GMACs, "
                               + _("{params} M params").format(
                                   params=f"{r['total_params'] / 1e6:.1f}") + "<extra></extra>")))
            continue
        # labels right of the markers, left where the next paper came within three months
        # (v2/v3 in Dec 2015, v4 in Feb 2016); two networks of one paper with close costs: the
        # cheaper one's label below, the other's above
        month = arxiv_month(r["arxiv"])
        soon = any(0 < (arxiv_month(p) - month).days <= 92 for p in papers)
        side = "left" if soon else "right"
        paper = sorted((o for o in rows if o["arxiv"] == r["arxiv"] and not o.get("baseline")),
                       key=lambda o: o["total_macs"])
        i = paper.index(r)
        close = [abs(o["total_macs"] - r["total_macs"]) < 0.1 * top for o in paper]
        above = i > 0 and close[i - 1] and paper[i - 1] is not r
        below = i + 1 < len(paper) and close[i + 1]
        side = f"{'top' if above else 'bottom' if below else 'middle'} {side}"
        top1 = f"{r['top1']:.1f} %" if r.get("top1") is not None else _("none published")
        fig.add_trace(go.Scatter(
            x=[arxiv_month(r["arxiv"])], y=[r["total_macs"] / 1e9], mode="markers+text",
            name=short_title(r["title"]), text=[short_title(r["title"])], textposition=side,
            textfont={"size": 14},
            marker={"size": 10 + 4 * (r["total_params"] / 1e6) ** 0.5, "opacity": 0.7},
            hovertemplate=(f"<b>{r['title']}</b><br>arXiv {r['arxiv']}<br>%{{y:.2f}} GMACs, "
                           + _("{params} M params").format(params=f"{r['total_params'] / 1e6:.1f}")
                           + f"<br>top-1 {top1}<extra></extra>")))
    fig.update_layout(showlegend=False, margin=MARGIN, height=420,
                      title=_("The Inception family and the ResNets (grey, by depth): cost by "
                            "publication date (marker size ~ params)"),
                      xaxis_title=_("arXiv submission (one paper, one date)"),
                      yaxis_title=_("GMACs at native input"))
    fig.update_yaxes(range=[0, 1.2 * max(r["total_macs"] for r in rows) / 1e9])
    fig.update_xaxes(range=[date(2014, 3, 1), date(2016, 9, 1)],
                     tickformat=_("%b %Y"))  # d3's date format: the language's month and year
    return _cjk(fig)


def grid_ticks(rows: list[dict]) -> list[int]:
    """The rows' grid sizes, largest first, without crowding (for a secondary axis)."""
    ticks: list[int] = []
    for h in sorted({r["output_shape"][1] for r in rows}, reverse=True):
        if not ticks or ticks[-1] - h > 0.08 * ticks[0]:
            ticks.append(h)
    return ticks


def feature_maps(result: dict) -> go.Figure:
    """Spatial size (line) and channels (bars) of each row's output, along depth."""
    rows = [r for r in result["rows"] if len(r["output_shape"]) == 3]
    names = [r["name"] for r in rows]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=names, y=[r["output_shape"][0] for r in rows], name=_("channels"),
                         marker_color="#9ecae1"), secondary_y=False)
    fig.add_trace(go.Scatter(x=names, y=[r["output_shape"][1] for r in rows], name=_("height = width"),
                             mode="lines+markers", line={"shape": "hv", "color": "#d62728"}),
                  secondary_y=True)
    fig.update_layout(title=_("Feature maps, block by block"), margin=MARGIN, height=360,
                      legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"})
    fig.update_yaxes(title_text=_("channels"), secondary_y=False)
    ticks = grid_ticks(rows)
    fig.update_yaxes(title_text=_("height = width (px)"), secondary_y=True, rangemode="tozero",
                     tickvals=ticks, showgrid=False)
    fig.update_xaxes(tickangle=-60, tickfont={"size": 9}, showticklabels=len(rows) <= 40)
    return _cjk(fig)


def representation_chart(sizes: list[dict]) -> go.Figure:
    """The values of each block's output (C x H x W) along the depth
    (``lessons.representation_sizes``): where the representation shrinks, and how sharply."""
    fig = go.Figure(go.Bar(x=[r["block"] for r in sizes], y=[r["values"] for r in sizes],
                           customdata=[r["output"] for r in sizes], marker_color="#9ecae1",
                           hovertemplate="%{x}<br>%{customdata}: %{y:,} values<extra></extra>"))
    fig.update_layout(title="Representation size along the depth (C x H x W values)",
                      margin=MARGIN, height=340)
    fig.update_yaxes(title_text="values per image", tickformat=",")
    fig.update_xaxes(tickangle=-60, tickfont={"size": 9})
    return fig


def receptive_fields(result: dict) -> go.Figure:
    """Receptive field (per axis) and grid size along depth, against the input size: where a
    unit comes to see the whole image, and how fast the grid shrinks meanwhile."""
    rows = [r for r in result["rows"] if r.get("rf") and len(r["output_shape"]) == 3
            and not r["name"].startswith("aux")]
    names = [r["name"] for r in rows]
    size = result["input_size"]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    square = all(r["rf"][0] == r["rf"][1] for r in rows)
    lines = ((0, _("field (h = w)"), "solid"),) if square else \
        ((0, _("field height"), "solid"), (1, _("field width"), "dot"))
    for axis, label, dash in lines:
        fig.add_trace(go.Scatter(
            x=names, y=[r["rf"][axis] for r in rows], name=label, mode="lines+markers",
            line={"color": "#6a51a3", "dash": dash},
            customdata=[r["jump"][axis] for r in rows],
            hovertemplate="%{x}<br>" + label + " %{y} px, " + _("jump")
                          + " %{customdata} px<extra></extra>"),
            secondary_y=False)
    fig.add_trace(go.Scatter(x=names, y=[r["output_shape"][1] for r in rows],
                             name=_("grid height (units)"), mode="lines",
                             line={"shape": "hv", "color": "#d62728"}), secondary_y=True)
    fig.add_hline(y=size, line_dash="dash", line_color="#636363",
                  annotation_text=_("input {size} px").format(size=size),
                  annotation_position="top left")
    whole = result.get("rf_whole_input")
    if whole in names:
        fig.add_vline(x=names.index(whole), line_dash="dot", line_color="#31a354")
        fig.add_annotation(x=whole, y=1, yref="paper", text=_("sees the whole input"),
                           showarrow=False, xanchor="left", font={"color": "#31a354"})
    fig.update_layout(title=_("Receptive field and grid along depth"), margin=MARGIN, height=360,
                      legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"})
    fig.update_yaxes(title_text=_("receptive field (input px)"), secondary_y=False,
                     rangemode="tozero")
    fig.update_yaxes(title_text=_("grid (units)"), secondary_y=True, rangemode="tozero",
                     showgrid=False, tickvals=grid_ticks(rows))
    fig.update_xaxes(tickangle=-60, tickfont={"size": 9}, showticklabels=len(rows) <= 40)
    return _cjk(fig)


def params_macs_bars(rows: list[dict]) -> go.Figure:
    """Parameters and MACs side by side, one bar per variant (compare rows)."""
    names = [r["variant"] for r in rows]
    fig = make_subplots(rows=1, cols=2, subplot_titles=(_("parameters (M)"), "MACs (G)"))
    fig.add_trace(go.Bar(x=names, y=[r["total_params"] / 1e6 for r in rows], name="params",
                         marker_color="#6baed6", texttemplate="%{y:.1f}"), row=1, col=1)
    fig.add_trace(go.Bar(x=names, y=[r["total_macs"] / 1e9 for r in rows], name="MACs",
                         marker_color="#fd8d3c", texttemplate="%{y:.2f}"), row=1, col=2)
    fig.update_layout(showlegend=False, margin=MARGIN, height=360)
    fig.update_xaxes(tickangle=-30)
    return _cjk(fig)


def accuracy_vs_macs(rows: list[dict]) -> go.Figure:
    """Published top-1 against our measured MACs; variants with no published number are left out."""
    fig = go.Figure()
    rows = [r for r in rows if r.get("top1") is not None]
    for r in rows:
        fig.add_trace(go.Scatter(
            x=[r["total_macs"] / 1e9], y=[r["top1"]], mode="markers", name=r["variant"],
            marker={"size": 8 + 3 * (r["total_params"] / 1e6) ** 0.5, "opacity": 0.8},
            hovertemplate=f"{r['variant']}<br>%{{x:.2f}} GMACs, top-1 %{{y:.1f}} %"
                          f"<br>{r['accuracy_source']}<extra></extra>"))
    fig.update_layout(title=_("Published top-1 vs our MACs (marker size ~ params)"),
                      margin=MARGIN, height=360, xaxis_title="GMACs", yaxis_title="top-1 (%)")
    if rows:
        top1 = [r["top1"] for r in rows]
        fig.update_xaxes(range=[0, 1.25 * max(r["total_macs"] for r in rows) / 1e9])
        fig.update_yaxes(range=[min(top1) - 1.5, max(top1) + 1.5])
    return _cjk(fig)


# A stage's role in the network, its legend text and colour (Inception A/B/C: the first, second
# and third grid of Inception blocks; GoogLeNet and BN-Inception number them 3, 4, 5).
ROLES = {"stem": ("stem", "#969696"), "A": ("Inception A (GoogLeNet: 3)", "#6baed6"),
         "reduction": (N_("reduction / pool"), "#fd8d3c"), "B": ("Inception B (4)", "#3182bd"),
         "C": ("Inception C (5)", "#08519c"), "aux": (N_("auxiliary head"), "#bcbddc"),
         "head": (N_("head"), "#e6550d")}  # legend texts: shown with _()


def stage_role(name: str) -> str:
    """"inception_resnet_b" -> "B", "pool_3" / "reduction_a" -> "reduction", "inception_3" -> "A"."""
    if name in ("stem", "head"):
        return name
    if name.startswith(("reduction", "pool")):
        return "reduction"
    if name.startswith("aux"):
        return "aux"
    last = name.rsplit("_", 1)[-1]
    return {"a": "A", "3": "A", "b": "B", "4": "B", "c": "C", "5": "C"}.get(last, "B")


def stage_macs(stage_results: dict[str, dict]) -> go.Figure:
    """Stacked bars: each variant's MACs split by stage (``{variant: stage-depth analysis}``),
    stacked in network order (stem at the bottom), coloured by role, one legend entry a role."""
    fig = go.Figure()
    shown: set[str] = set()
    for variant, result in stage_results.items():
        for r in result["rows"]:  # rows come in network order; traces stack in trace order
            role = stage_role(r["name"])
            label, colour = ROLES[role]
            fig.add_trace(go.Bar(
                x=[variant], y=[r["macs"] / 1e9], name=_(label), legendgroup=role,
                showlegend=role not in shown, marker_color=colour,
                legendrank=1000 - 10 * list(ROLES).index(role),  # head on top, as in the stack
                marker_line={"color": "white", "width": 1},
                hovertemplate=f"{r['name']}: %{{y:.3f}} GMACs<extra>%{{x}}</extra>"))
            shown.add(role)
    fig.update_layout(barmode="stack", title=_("Where the MACs go, stage by stage (stem at the bottom)"),
                      yaxis_title="GMACs", margin=MARGIN, height=420, legend={"title": _("role")})
    return _cjk(fig)


def residual_scale_chart(scales: list[dict], band: tuple[float, float] = (0.1, 0.3)) -> go.Figure:
    """Each residual block's scale along depth, over the papers' 0.1-0.3 band."""
    fig = go.Figure(go.Bar(
        x=[s["block"] for s in scales], y=[s["scale"] for s in scales],
        marker_color=["#3182bd" if s["relu"] else "#bdbdbd" for s in scales],
        hovertemplate="%{x}: scale %{y:.2f}<extra></extra>"))
    fig.add_hrect(y0=band[0], y1=band[1], fillcolor="#74c476", opacity=0.2, line_width=0,
                  annotation_text=_("the papers' range 0.1-0.3"), annotation_position="top left")
    fig.update_layout(title=_("Residual scale of each block (grey: the final block, no ReLU)"),
                      margin=MARGIN, height=320, yaxis_title="scale", yaxis_range=[0, 1.05])
    fig.update_xaxes(showticklabels=False, title_text=_("residual blocks, input to output"))
    return _cjk(fig)


def top_k_bars(top: list[dict], title: str = "") -> go.Figure:
    """A prediction's top-k classes as horizontal bars, the most likely on top (probabilities
    in %)."""
    labels = [f"{t['label']} ({t['index']})" for t in reversed(top)]
    probs = [100 * t["prob"] for t in reversed(top)]
    fig = go.Figure(go.Bar(x=probs, y=labels, orientation="h", marker_color="#6baed6",
                           texttemplate="%{x:.1f} %", textposition="auto"))
    fig.update_layout(title=title, margin=MARGIN, height=60 + 36 * len(top),
                      xaxis={"title": _("probability (%)"), "range": [0, 100]})
    return _cjk(fig)


def kernel_diagram(n: int, stacked: bool = False) -> go.Figure:
    """Two receptive fields of the same size, side by side, one cell per input pixel.

    Left: one n x n kernel (n² weights). Right, ``stacked=False``: a 1 x n conv (one row) then
    an n x 1 conv (one column) over its outputs: 2n weights, the n x n field still covered.
    ``stacked=True`` (n = 5): two 3x3 convs, 2 x 9 = 18 weights for the 5 x 5 field.
    """
    fig = go.Figure()
    gap = max(3, n // 2)
    mid = n // 2

    def cell(x0, y0, colour, line="white"):
        fig.add_shape(type="rect", x0=x0, x1=x0 + 1, y0=y0, y1=y0 + 1, fillcolor=colour,
                      line={"color": line, "width": 2})

    for i in range(n):
        for j in range(n):
            cell(i, j, "#6baed6")  # left: every weight of the n x n kernel
            if stacked:  # the second 3x3 sees 3x3 outputs of the first: the centre 3x3
                inner = abs(i - mid) <= 1 and abs(j - mid) <= 1
                cell(n + gap + i, j, "#fd8d3c" if inner else "#fdd0a2")
            else:
                colour = ("#31a354" if i == mid else "#fd8d3c" if j == mid else "#fdd0a2")
                cell(n + gap + i, j, colour)
    weights = _("{kernel}: {n} weights")
    left = weights.format(kernel=f"{n}x{n}", n=n * n)
    right = weights.format(kernel="3x3 + 3x3", n=18) if stacked else \
        weights.format(kernel=f"1x{n} + {n}x1", n=2 * n)
    for x, text in ((n / 2, left), (n + gap + n / 2, right)):
        fig.add_annotation(x=x, y=n + 0.2, text=text, showarrow=False, yanchor="bottom",
                           font={"size": 13})
    fig.update_xaxes(visible=False, range=[-0.5, 2 * n + gap + 0.5], constrain="domain")
    fig.update_yaxes(visible=False, range=[-0.5, n + 1.6], scaleanchor="x")
    fig.update_layout(margin={"l": 0, "r": 0, "t": 10, "b": 0}, height=220, showlegend=False,
                      plot_bgcolor="rgba(0,0,0,0)")
    return _cjk(fig)


BATCH_COLOURS = ("#3182bd", "#e6550d", "#31a354", "#756bb1")


def latency_vs_macs(report: dict) -> go.Figure:
    """Measured time per image against MACs per image, one marker per network and batch
    (``explorer.runtime.latency.report``), over the limit: MACs at the matmul peak. Were MACs a clock,
    the markers would lie on one line."""
    fig = go.Figure()
    peak = report["peak"]["gmacs_per_s"]
    rows = report["rows"]
    batches = [t["batch"] for t in rows[0]["latency"]] if rows else []
    for i, batch in enumerate(batches):
        times = [next(t for t in r["latency"] if t["batch"] == batch) for r in rows]
        fig.add_trace(go.Scatter(
            x=[r["macs"] / 1e9 for r in rows], y=[t["median_ms"] / batch for t in times],
            mode="markers+text", name=_("batch {n}").format(n=batch),
            text=[short_name(r["variant"]) for r in rows],
            textposition="top center", marker={"size": 11, "color": BATCH_COLOURS[i % 4]},
            customdata=[t["gmacs_per_s"] for t in times],
            hovertemplate="%{text}<br>%{x:.3g} GMACs, %{y:.1f} ms per image"
                          "<br>%{customdata:.1f} GMAC/s<extra>batch " f"{batch}</extra>"))
    most = max((r["macs"] for r in rows), default=0) / 1e9 * 1.15
    fig.add_trace(go.Scatter(x=[0, most], y=[0, 1000 * most / peak], mode="lines",
                             name=_("limit: the matmul peak ({peak} GMAC/s)").format(peak=f"{peak:.0f}"),
                             line={"dash": "dash", "color": "#636363"}, hoverinfo="skip"))
    fig.update_layout(title=_("Time per image vs MACs per image"), margin=MARGIN, height=380,
                      xaxis_title=_("GMACs per image"), yaxis_title=_("ms per image (median)"),
                      legend={"orientation": "h", "y": -0.25})
    fig.update_xaxes(rangemode="tozero")
    fig.update_yaxes(rangemode="tozero")
    return _cjk(fig)


def gmacs_vs_peak(report: dict) -> go.Figure:
    """Achieved GMAC/s per network and batch, under the machine's measured matmul peak."""
    fig = go.Figure()
    rows = report["rows"]
    peak = report["peak"]
    batches = [t["batch"] for t in rows[0]["latency"]] if rows else []
    for i, batch in enumerate(batches):
        times = [next(t for t in r["latency"] if t["batch"] == batch) for r in rows]
        fig.add_trace(go.Bar(x=[short_name(r["variant"]) for r in rows],
                             y=[t["gmacs_per_s"] for t in times], name=_("batch {n}").format(n=batch),
                             marker_color=BATCH_COLOURS[i % 4], texttemplate="%{y:.3g}",
                             customdata=[100 * t["peak_fraction"] for t in times],
                             hovertemplate="%{x}: %{y:.1f} GMAC/s, %{customdata:.0f} % of the "
                                           f"peak<extra>batch {batch}</extra>"))
    fig.add_hline(y=peak["gmacs_per_s"], line_dash="dash", line_color="#636363",
                  annotation_text=_("matmul peak {peak} GMAC/s ({size}x{size} {dtype})").format(
                      peak=f"{peak['gmacs_per_s']:.0f}", size=peak["size"], dtype=peak["dtype"]),
                  annotation_position="top left")
    fig.update_layout(title=_("Achieved GMAC/s vs the machine's peak"), barmode="group",
                      margin=MARGIN, height=380, yaxis_title="GMAC/s",
                      yaxis_range=[0, 1.15 * peak["gmacs_per_s"]],
                      legend={"orientation": "h", "y": -0.25})
    return _cjk(fig)


def short_name(variant: str) -> str:
    """"inception_resnet_v2" -> "IR-v2", "inception_v4" -> "v4": chart labels that fit."""
    return {"googlenet": "GoogLeNet", "bn_inception": "BN-Inc."}.get(
        variant, variant.replace("inception_resnet_", "IR-").replace("inception_", ""))


def aux_note(result: dict) -> str:
    """What the totals of ``result`` (an analysis at block depth) hold of the auxiliary heads:
    their parameters are in the params total (the model carries them, a checkpoint too), their
    MACs are not in the MACs total (they run only in training)."""
    aux = [r for r in result["rows"] if r["kind"] == "aux"]
    if not aux:
        return _("Auxiliary heads, when built, get rows of their own: their parameters count in "
                 "the params total, their MACs do not (they run only in training).")
    params, macs = sum(r["params"] for r in aux), sum(r["macs"] for r in aux)
    return _("Auxiliary heads ({names}): {params} parameters, counted in the params total "
             "({total_params}); {macs} MACs, not in the MACs total ({total_macs}: they run only "
             "in training).").format(names=", ".join(r["name"] for r in aux), params=f"{params:,}",
                                     total_params=f"{result['total_params']:,}",
                                     macs=f"{macs:,}", total_macs=f"{result['total_macs']:,}")
