"""Cached computations for the pages, keyed by (variant, config).

``st.cache_data`` for what is shown (analysis dicts, DOT, SVG, tables); ``st.cache_resource``
for shared read-only objects (charts). No model with real weights is built here: predictions,
Grad-CAM, timings and the Lab's work run in worker processes (``explorer.ui.answers``,
``explorer.ui.heavy``). A ConfigError is raised, never cached: the page shows its message.
"""

from __future__ import annotations

import streamlit as st

from explorer.analysis.compare import compare_rows
from explorer.analysis.graph import render, to_dot
from explorer.analysis.probe import probe
from explorer.analysis.published import best_published
from explorer.analysis.rows import analyze
from explorer.core.i18n import N_, language, speaking
from explorer.variants import VARIANTS

WARMUP = "Working out every block's shapes and costs..."


@st.cache_data(show_spinner=WARMUP, max_entries=256)
def analysis(variant: str, depth: str = "block", **config) -> dict:
    size = config.pop("input_size", None)
    return analyze(variant, input_size=size, depth=depth, **config).to_dict()


def inspect_charts(variant: str, **config) -> tuple:
    """Inspect's charts of ``variant`` (feature-map size and receptive field along the depth):
    built once per configuration and language, not on every rerun, and shared --
    ``st.plotly_chart`` only reads a figure (it serialises a copy)."""
    return _inspect_charts(variant, language(), **config)


@st.cache_resource(show_spinner=False, max_entries=64)
def _inspect_charts(variant: str, lang: str, **config) -> tuple:
    from explorer.analysis import charts
    by_block = analysis(variant, "block", **config)
    with speaking(lang):
        return charts.feature_maps(by_block), charts.receptive_fields(by_block)


@st.cache_data(show_spinner=False, max_entries=64)
def blocks(variant: str, **config) -> dict[str, dict]:
    """Block name -> kind, paper figure and idea (a block without its own falls back to its
    stage's)."""
    spec = probe(variant, **config).spec
    out = {}
    for stage in spec.stages:
        for name, block in stage.blocks:
            own, of_stage = getattr(block, "info", stage.info), stage.info
            out[f"{stage.name}.{name}"] = {"kind": own.kind or of_stage.kind,
                                           "figure": own.figure or of_stage.figure,
                                           "idea": own.idea or of_stage.idea, "stage": stage.name}
    return out


@st.cache_data(show_spinner=WARMUP)
def overview() -> list[dict]:
    """Each variant at its default configuration, with its best published accuracy."""
    rows = []
    for name, info in VARIANTS.items():
        result = analysis(name)
        pub = best_published(name)
        rows.append({"variant": name, "title": info.title, "paper": info.paper,
                     "arxiv": info.arxiv, "year": info.year, "idea": info.idea,
                     "layout": result["layout"], "input_size": result["input_size"],
                     "total_params": result["total_params"], "total_macs": result["total_macs"],
                     "top1": pub.top1 if pub else None, "top5": pub.top5 if pub else None,
                     "source": pub.source if pub else N_("none published"),
                     "baseline": info.baseline})
    return rows


@st.cache_data(show_spinner=WARMUP, max_entries=128)
def compare_row(variant: str, input_size: int | None, **options) -> dict:
    return compare_rows([variant], input_size, **options)[0]


@st.cache_data(show_spinner=False, max_entries=32)
def residual_block_table(variant: str, **config) -> list[dict]:
    from explorer.analysis.lessons import residual_blocks
    return residual_blocks(probe(variant, **config).spec)


@st.cache_data(show_spinner="Running torchinfo on the meta device...", max_entries=32)
def torchinfo_text(variant: str, depth: str = "block", **config) -> str:
    from explorer.runtime.torchinfo_view import torchinfo_text as text
    size = config.pop("input_size", None)
    return text(variant, input_size=size, depth=depth, **config)


# -- the explorer's graph ----------------------------------------------------------------------

@st.cache_data(show_spinner=WARMUP, max_entries=64)
def all_rows(variant: str, **config) -> list[dict]:
    """Analysis rows at every depth (stage, block, layer), for details and overlays."""
    return [r for depth in ("stage", "block", "layer")
            for r in analysis(variant, depth, **config)["rows"]]


@st.cache_data(show_spinner=False, max_entries=64)
def graph_names(variant: str, **config) -> tuple[set, dict]:
    """(every name a node may have, what can be expanded) of the explorer's drawing."""
    from explorer.analysis.graph import expandable
    opened = expandable(variant, **config)
    names = {r["name"] for r in all_rows(variant, **config)} | set(opened) | {"input"}
    return names, opened


def explorer_svg(variant: str, expanded: tuple, overlay: str | None, values: dict | None,
                 scale: tuple | None, projector: bool, config: dict,
                 lang: str | None = None) -> tuple[str, str]:
    """(DOT, SVG) of the explorer's view, its words in ``lang`` (default: the run's)."""
    return _explorer_svg(variant, expanded, overlay, values, scale, projector, config,
                         lang or language())


@st.cache_data(show_spinner="Laying out the graph with Graphviz...", max_entries=64)
def _explorer_svg(variant: str, expanded: tuple, overlay: str | None, values: dict | None,
                  scale: tuple | None, projector: bool, config: dict, lang: str) -> tuple[str, str]:
    with speaking(lang):
        source = to_dot(variant, expanded=expanded, overlay=overlay, values=values,
                        value_scale=scale, projector=projector, **config)
    return source, render(source, "svg").decode()


@st.cache_data(show_spinner="Laying out the graph with Graphviz...", max_entries=16)
def png(dot_source: str) -> bytes:
    return render(dot_source, "png")


@st.cache_data(show_spinner=WARMUP)
def rethinking_claims() -> list[dict]:
    """Rethinking's section 6 claims (42 layers, about 2.5x GoogLeNet) beside our computation,
    in the run's language."""
    return _rethinking_claims(language())


@st.cache_data(show_spinner=WARMUP)
def _rethinking_claims(lang: str) -> list[dict]:
    from explorer.analysis import lessons
    spec = probe("inception_v3", layout="paper").spec
    v3, googlenet = (analysis(v, layout="paper")["total_macs"] for v in ("inception_v3", "googlenet"))
    with speaking(lang):
        return lessons.rethinking_claims(spec, v3, googlenet)


def design_principles() -> dict:
    """What we compute for each of Rethinking's four design principles (section 2), in the
    run's language."""
    return _design_principles(language())


@st.cache_data(show_spinner=WARMUP)
def _design_principles(lang: str) -> dict:
    with speaking(lang):
        return _principles()


def _principles() -> dict:
    from explorer.analysis import lessons
    v3 = analysis("inception_v3", layout="paper")
    block = probe("inception_v3", layout="paper").spec.block("inception_a.0")
    row = next(r for r in v3["rows"] if r["name"] == "inception_a.0")
    networks = [(VARIANTS[v].title, probe(v, layout=lay).spec, analysis(v, "stage", layout=lay))
                for v, lay in (("googlenet", "paper"), ("inception_v3", "paper"),
                               ("inception_v4", "paper"), ("inception_resnet_v2", "released"))]
    return {"sizes": lessons.representation_sizes(v3["rows"]),
            "widest": lessons.widest_per_grid(v3["rows"]),
            "aggregation": lessons.reduced_aggregation(block, "3x3", row["input_shape"][0],
                                                       row["output_shape"][-1]),
            "balance": lessons.width_and_depth(networks)}


@st.cache_data(show_spinner="Estimating each network's peak memory...", max_entries=64)
def compare_rows_with_memory(rows: list[dict]) -> list[dict]:
    """Compare rows with each network's estimated peak memory (one forward pass, batch 1)."""
    from explorer.runtime.memory import with_peak_memory
    return with_peak_memory(rows)
