"""Overview: the family at a glance."""

import streamlit as st

from explorer.analysis import charts
from explorer.analysis.rows import MACS_NOTE
from explorer.ui import data
from explorer.ui.controls import open_in_inspect, show_url_notes, url_snapshot

st.title("Inception Explorer")
show_url_notes("overview", url_snapshot(), {})  # this page takes nothing from a link
st.markdown("Seven networks of the Inception family, from GoogLeNet (2014) to Inception-ResNet-v2 "
            "(2016), built in PyTorch. Every parameter count, MAC and shape shown here is "
            "measured from the models themselves; accuracies are the published ones, with "
            "their source.")

rows = data.overview()
st.plotly_chart(charts.timeline(rows))
st.caption(f"Params and MACs: each variant's default layout at its native input size. Params "
           f"include BatchNorm's scale and shift. {MACS_NOTE}.")

depth, cost, _ = data.rethinking_claims()
st.caption(f"A claim and our computation, side by side: the Rethinking paper (arXiv 1512.00567, "
           f"section 6) calls Inception-v3 {depth['the paper says'].split(' (')[0]} layers deep "
           f"and about 2.5x GoogLeNet's cost; on our build of its Table 1 we count "
           f"{depth['computed here']} layers and compute {cost['computed here']}. How we count, "
           "and the paper's own Table 3: on the Learn page, section 6.")

for start in range(0, len(rows), 4):
    for col, r in zip(st.columns(4), rows[start:start + 4]):
        with col.container(border=True, height="stretch"):
            short = charts.short_title(r["title"])
            st.markdown(f"#### {short}")
            aka = r["title"][len(short):].strip(" ()")
            st.caption(f"{r['year']}" + (f" · {aka}" if aka else ""))
            st.markdown(f"[{r['paper']}](https://arxiv.org/abs/{r['arxiv']})")
            st.markdown(f"*{r['idea']}*")
            top1 = "–" if r["top1"] is None else f"{r['top1']:.1f} %"
            st.markdown(f"**{charts.fmt_count(r['total_params'])}** params · "
                        f"**{charts.fmt_count(r['total_macs'])}** MACs · **{top1}** top-1")
            st.caption(f"{r['layout']} layout at {r['input_size']} px · top-1: {r['source']}")
            if st.button("Inspect", key=f"inspect_{r['variant']}", icon=":material/arrow_forward:",
                         type="tertiary", help=f"open {r['variant']} on the Inspect page"):
                open_in_inspect(r["variant"])
