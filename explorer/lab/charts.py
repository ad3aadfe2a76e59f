"""Plotly figures of the Lab: signal along the depth, and race curves."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from explorer.core.i18n import FONT_FAMILY, _

COLORS = qualitative.Plotly


def log_ticks(values) -> tuple[list[float], list[str]]:
    """Ticks of a log axis over ``values``: 1, 2 and 5 of every decade they span (only the
    powers of ten beyond four decades), each labelled with its whole value ("500", "0.5",
    "1e-06" for the very small or large)."""
    import math
    positive = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    if not positive:
        return [], []
    low, high = math.floor(math.log10(min(positive))), math.ceil(math.log10(max(positive)))
    steps = (1,) if high - low > 4 else (1, 2, 5)
    vals = [m * 10.0 ** e for e in range(low, high + 1) for m in steps]
    vals = [v for v in vals if v <= 10.0 ** high]
    return vals, [f"{float(f'{v:.1g}'):g}" for v in vals]


def signal_figure(results: list[tuple[str, dict]]) -> go.Figure:
    """One line per (label, signal result): activation std (left) and gradient norm (right,
    log scale) against the block's position in the network."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        _("activation std of each block's output"), _("gradient norm reaching it (log scale)")))
    for i, (label, result) in enumerate(results):
        rows = result["rows"]
        names = [r["name"] for r in rows]
        for col, key in ((1, "activation_std"), (2, "grad_norm")):
            fig.add_trace(go.Scatter(
                x=list(range(len(rows))), y=[r[key] for r in rows], mode="lines+markers",
                name=label, legendgroup=label, showlegend=col == 1, customdata=names,
                line={"color": COLORS[i % len(COLORS)]}, marker={"size": 4},
                hovertemplate="%{customdata}<br>%{y:.4g}<extra>" + label + "</extra>"),
                row=1, col=col)
    fig.update_xaxes(title_text=_("block (network order: stem ... head)"))
    vals, text = log_ticks([r["grad_norm"] for _r, res in results for r in res["rows"]])
    # plotly's own log ticks label 500 and 0.5 both "5": every tick gets its whole value
    fig.update_yaxes(type="log", tickvals=vals, ticktext=text, row=1, col=2)
    fig.update_layout(height=420, margin={"t": 40, "b": 40}, legend={"orientation": "h", "y": -0.2},
                      font_family=FONT_FAMILY)  # fonts that draw Hangul
    return fig


def race_figure(runs: list[dict]) -> go.Figure:
    """Training loss and validation accuracy against the step, one colour per network, one line
    per seed."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        _("training loss (mean since the previous point)"),
        _("validation accuracy (1,000 unseen digits)")))
    labels = list(dict.fromkeys(r["label"] for r in runs))
    shown = set()
    for run in runs:
        color = COLORS[labels.index(run["label"]) % len(COLORS)]
        steps = [p["step"] for p in run["curve"]]
        for col, key in ((1, "train_loss"), (2, "val_acc")):
            fig.add_trace(go.Scatter(
                x=steps, y=[p[key] for p in run["curve"]], mode="lines+markers",
                name=run["label"], legendgroup=run["label"],
                showlegend=col == 1 and run["label"] not in shown,
                line={"color": color}, marker={"size": 4},
                hovertemplate=f"seed {run['seed']}<br>step %{{x}}<br>%{{y:.4g}}<extra>"
                              f"{run['label']}</extra>"), row=1, col=col)
        shown.add(run["label"])
    fig.update_xaxes(title_text=_("training step"))
    fig.update_yaxes(range=[0, 1], row=1, col=2)
    fig.update_layout(height=400, margin={"t": 40, "b": 40}, legend={"orientation": "h", "y": -0.25},
                      font_family=FONT_FAMILY)
    return fig
