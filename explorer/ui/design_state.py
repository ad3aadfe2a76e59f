"""The Design page's state: which block of which network is on the bench, the design (the last
valid one: an impossible edit leaves it as it was and says why), and the URL that carries them
(``variant``, ``layout``, ``block``, ``design``, ``whole``)."""

from __future__ import annotations

import html
from dataclasses import dataclass

import streamlit as st

from explorer.analysis import design as d
from explorer.analysis.graph import render, to_dot
from explorer.analysis.rows import analyze
from explorer.core.i18n import N_, _
from explorer.spec.netspec import Block
from explorer.ui.language import session_language
from explorer.variants import VARIANTS, ConfigError

KEY = "design:state"
ERROR = "design:error"
NOTE = "design:url_note"
SELECTED = "design:selected"
URL = "design:url"              # the URL as this session last read or wrote it


@dataclass(frozen=True)
class Bench:
    variant: str
    layout: str
    name: str                # the block opened (stage.block)
    block: Block             # the design, always a valid one
    whole: bool = False      # placed at every block of the stage

    def query(self) -> dict[str, str]:
        q = {"variant": self.variant, "layout": self.layout, "block": self.name,
             "design": d.encode(self.block)}
        if self.whole:
            q["whole"] = "stage"
        return q

    def result(self) -> d.Bench:
        return d.bench_of(self.variant, self.layout, self.name, self.block, self.whole)


def _from_url() -> Bench:
    """The bench the URL describes; a value it cannot take is noted and replaced."""
    q = st.query_params
    notes = []
    variant = q.get("variant") or "inception_v3"
    if variant not in VARIANTS:
        notes.append(_("there is no variant {variant}: Inception-v3 opened instead").format(
            variant=repr(variant)))
        variant = "inception_v3"
    info = VARIANTS[variant]
    layout = q.get("layout") or ("paper" if "paper" in info.layouts else info.default_layout)
    layout = info.aliases.get(layout, layout)
    if layout not in info.layouts:
        notes.append(_("{variant} has no layout {layout}: {default} opened instead").format(
            variant=variant, layout=repr(layout), default=info.default_layout))
        layout = info.default_layout
    names = d.blocks_of(variant, layout)
    name = q.get("block") or d.first_block(variant, layout)
    if name not in names:
        notes.append(_("{variant} has no block {name}: {first} opened").format(
            variant=variant, name=repr(name), first=d.first_block(variant, layout)))
        name = d.first_block(variant, layout)
    spec_block = d.open_block(d.describe(variant, layout), name)
    block = spec_block
    if q.get("design"):
        try:
            block = d.decode(q.get("design"))
            d.bench_of(variant, layout, name, block, q.get("whole") == "stage")
        except ConfigError as err:
            block = spec_block
            notes.append(_("the design in the link was not used: {error}").format(error=err))
    if notes:
        st.session_state[NOTE] = notes
    return Bench(variant, layout, name, block, q.get("whole") == "stage")


def current() -> Bench:
    """The bench of this session (from the URL the first time, or when the URL changed)."""
    bench = st.session_state.get(KEY)
    url = _url()
    if bench is None or url != st.session_state.get(URL):  # a new link: it wins
        bench = _from_url()
        st.session_state[KEY] = bench
        st.session_state[URL] = url
        st.session_state.pop(ERROR, None)
    return bench


def _url() -> dict:
    return {k: st.query_params.get(k) for k in ("variant", "layout", "block", "design", "whole")}


def publish(bench: Bench) -> None:
    """The bench into session state and the URL (a link reopens the same design)."""
    st.session_state[KEY] = bench
    query = bench.query()
    for key in ("variant", "layout", "block", "design", "whole"):
        if key in query:
            if st.query_params.get(key) != query[key]:
                st.query_params[key] = query[key]
        elif key in st.query_params:
            del st.query_params[key]
    st.session_state[URL] = _url()


def apply(edit, *args, **kwargs) -> None:
    """Apply ``edit(block, ...)``; keep the result only when the network still runs. (A
    callback: why not is said in the session's language.)"""
    bench = st.session_state[KEY]
    try:
        with session_language():
            block = edit(bench.block, *args, **kwargs)
    except ConfigError as err:
        st.session_state[ERROR] = str(err)
        return
    _publish_if_valid(Bench(bench.variant, bench.layout, bench.name, block, bench.whole))


def _publish_if_valid(new: Bench) -> None:
    """Show ``new`` when it runs; else keep the last valid design and say why."""
    try:
        with session_language():
            new.result()
    except ConfigError as err:
        st.session_state[ERROR] = str(err)
        return
    st.session_state.pop(ERROR, None)
    publish(new)


def apply_widget(key: str, edit) -> None:
    """A widget's callback: ``edit(block, its value)``."""
    apply(lambda block: edit(block, st.session_state[key]))


def set_whole(key: str) -> None:
    bench = st.session_state[KEY]
    _publish_if_valid(Bench(bench.variant, bench.layout, bench.name, bench.block,
                            bool(st.session_state[key])))


def layer_changed(key: str, branch: str, index: int, layer) -> None:
    """One of a layer's widgets changed: the layer as the widgets now say (a changed kernel
    gets the padding that keeps the grid, when asked)."""
    s = st.session_state
    op = s.get(f"d_op:{key}") or layer.op
    kh, kw = s[f"d_kh:{key}"], s[f"d_kw:{key}"]
    ph, pw = s[f"d_ph:{key}"], s[f"d_pw:{key}"]
    old_k = d.pair(layer.get("kernel", 1))
    if s.get(f"d_keep:{key}", True) and (kh, kw) != old_k:
        ph, pw = (kh - 1) // 2, (kw - 1) // 2
    out = s.get(f"d_out:{key}") if layer.op == "conv" else None
    changes = {"kernel": (int(kh), int(kw)), "stride": int(s[f"d_s:{key}"]),
               "padding": (int(ph), int(pw))}
    if op == "conv" and out is not None:
        changes["out"] = int(out)
    apply(d.change_layer, branch, index, op=op, **changes)


def select_node(node: str) -> None:
    """A click in the block's graph: its layer becomes the one edited."""
    parts = node.split(".")
    if "branches" in parts:
        i = parts.index("branches")
        if len(parts) > i + 2 and parts[i + 2].isdigit():
            st.session_state[SELECTED] = (parts[i + 1], int(parts[i + 2]))
        elif len(parts) > i + 1:
            st.session_state[SELECTED] = (parts[i + 1], 0)


def start(variant: str, layout: str, name: str, block: Block | None = None,
          whole: bool = False) -> None:
    spec = d.describe(variant, layout)
    st.session_state.pop(ERROR, None)
    st.session_state.pop(SELECTED, None)
    publish(Bench(variant, layout, name, block or d.open_block(spec, name), whole))


@st.cache_data(max_entries=64, show_spinner=False)
def block_svg(dot: str) -> str:
    return render(dot, "svg").decode()


@st.cache_data(max_entries=16, show_spinner=False)
def block_png(dot: str) -> bytes:
    return render(dot, "png")


def block_dot(result: d.Bench) -> str:
    return to_dot(result.block_spec, depth="layer", collapse=False)


def network_rows(result: d.Bench) -> list[dict]:
    """Each block of the network designed, beside the original: shapes re-threaded."""
    ours = analyze(result.spec, depth="block").rows
    original = d.describe(result.spec.variant, result.spec.layout)
    theirs = {r.name: r for r in analyze(original, depth="block").rows}
    out = []
    for r in ours:
        o = theirs.get(r.name)
        out.append({"block": r.name, "output": "x".join(map(str, r.output_shape)),
                    "was": "x".join(map(str, o.output_shape)) if o else "",
                    "params": r.params, "Δ params": r.params - (o.params if o else 0),
                    "MACs": r.macs, "Δ MACs": r.macs - (o.macs if o else 0)})
    return out


def figure_html(result: d.Bench) -> str:
    """The block's figures beside the original's; the designed params and MACs carry
    ``data-design-params`` / ``data-design-macs`` (plain integers) for tests and scripts."""
    a, b = result.block["original"], result.block["designed"]
    na, nb = result.network["original"], result.network["designed"]

    def diff(x, y):
        v = y - x
        pct = f" ({100 * v / x:+.1f} %)" if x else ""
        return f"{v:+,}{pct}" if v else "="

    def shape(s):
        return html.escape(" x ".join(map(str, s)))

    def rf(s):
        return html.escape(" x ".join(map(str, s.rf))) if s.rf else "-"

    rf_diff = result.difference("block").get("rf")
    rows = [
        (N_("output shape"), shape(a.out_shape), shape(b.out_shape),
         "=" if a.out_shape == b.out_shape else _("changed"), ""),
        (N_("params"), f"{a.params:,}", f"{b.params:,}", diff(a.params, b.params),
         f' data-design-params="{int(b.params)}"'),
        (N_("MACs"), f"{a.macs:,}", f"{b.macs:,}", diff(a.macs, b.macs),
         f' data-design-macs="{int(b.macs)}"'),
        (N_("receptive field (block input px)"), rf(a), rf(b),
         "=" if not rf_diff or rf_diff == [0, 0] else f"{rf_diff[0]:+} x {rf_diff[1]:+}", ""),
        (N_("network params"), f"{na.params:,}", f"{nb.params:,}", diff(na.params, nb.params), ""),
        (N_("network MACs"), f"{na.macs:,}", f"{nb.macs:,}", diff(na.macs, nb.macs), ""),
        (N_("network output"), shape(na.out_shape), shape(nb.out_shape),
         "=" if na.out_shape == nb.out_shape else _("changed"), ""),
    ]
    body = "".join(f"<tr><th style='text-align:left'>{html.escape(_(k))}</th><td>{o}</td><td{attr}>{n}</td>"
                   f"<td>{dd}</td></tr>" for k, o, n, dd, attr in rows)
    return ("<table data-design-figures style='width:100%;font-variant-numeric:tabular-nums'>"
            f"<tr><th></th><th>{_('original')}</th><th>{_('designed')}</th>"
            f"<th>{_('difference')}</th></tr>"
            f"{body}</table>")


def design_link(label: str, query: dict[str, str], container=st) -> None:
    """A link that opens the Design page on ``query`` (variant, layout, block, design, whole)."""
    from explorer.ui.nav import page
    container.page_link(page("design"), label=label, icon=":material/architecture:",
                        query_params=query)


def lesson_link(key: str, container=st) -> None:
    """Learn's link to a prepared design (``analysis.design.LESSONS``)."""
    label = d.LESSONS[key][0]
    design_link(_("Try it on the Design bench: {lesson}").format(lesson=_(label)),
                d.lesson_query(key), container)
