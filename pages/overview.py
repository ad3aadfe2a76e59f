"""Overview: the family at a glance."""

import streamlit as st

from explorer.analysis import charts
from explorer.core.i18n import _
from explorer.ui import data
from explorer.ui.controls import LAYOUT_NAMES, open_in_inspect, show_url_notes, url_snapshot
from explorer.ui.words import MACS_NOTE

st.title("Inception Explorer")
show_url_notes("overview", url_snapshot(), {})  # this page takes nothing from a link
rows = data.overview()
family = [r for r in rows if not r["baseline"]]
baselines = [r for r in rows if r["baseline"]]
st.markdown(_("{n} networks of the Inception family, from GoogLeNet (2014) to Inception-ResNet-v2 "
              "(2016), and {m} ResNets they were measured against, built in PyTorch. Every "
              "parameter count, MAC and shape shown here is measured from the models themselves; "
              "accuracies are the published ones, with their source.").format(
                  n=len(family), m=len(baselines)))

st.plotly_chart(charts.timeline(rows))
st.caption(_("Params and MACs: each variant's default layout at its native input size. Params "
             "include BatchNorm's scale and shift. {macs_note}.").format(macs_note=_(MACS_NOTE)))

depth, cost, _table3 = data.rethinking_claims()
st.caption(_("A claim and our computation, side by side: the Rethinking paper (arXiv 1512.00567, "
             "section 6) calls Inception-v3 {paper_depth} layers deep and about 2.5x GoogLeNet's "
             "cost; on our build of its Table 1 we count {depth} layers and compute {cost}. How we "
             "count, and the paper's own Table 3: on the Learn page, section 6.").format(
                 paper_depth=depth["the paper says"].split(" (")[0], depth=depth["computed here"],
                 cost=cost["computed here"]))


def cards(rows: list[dict]) -> None:
    """Four cards a row: each network's idea, cost, accuracy and a way into Inspect."""
    for start in range(0, len(rows), 4):
        for col, r in zip(st.columns(4), rows[start:start + 4]):
            with col.container(border=True, height="stretch"):
                title = _(r["title"])  # the variant's facts, said in the page's language
                short = charts.short_title(title)
                st.markdown(f"#### {short}")
                aka = title[len(short):].strip(" ()")
                st.caption(f"{r['year']}" + (f" · {aka}" if aka else ""))
                st.markdown(f"[{r['paper']}](https://arxiv.org/abs/{r['arxiv']})")
                st.markdown(f"*{_(r['idea'])}*")
                top1 = "–" if r["top1"] is None else f"{r['top1']:.1f} %"
                st.markdown(_("**{params}** params · **{macs}** MACs · **{top1}** top-1").format(
                    params=charts.fmt_count(r["total_params"]), macs=charts.fmt_count(r["total_macs"]),
                    top1=top1))
                st.caption(_("{layout} layout at {size} px · top-1: {source}").format(
                    layout=_(LAYOUT_NAMES.get(r["layout"], r["layout"])), size=r["input_size"],
                    source=_(r["source"])))
                if st.button(_("Inspect"), key=f"inspect_{r['variant']}", icon=":material/arrow_forward:",
                             type="tertiary",
                             help=_("open {variant} on the Inspect page").format(variant=r["variant"])):
                    open_in_inspect(r["variant"])


cards(family)
st.subheader(_("The baselines: ResNet"))
st.caption(_("The residual networks of He et al. that the Inception-v4 paper measures against "
             "(its \"ResNet-151\"), and their pre-activation version: grey squares on the "
             "timeline, in the same vocabulary everywhere else."))
cards(baselines)
