"""Learn: the design rules of the Inception papers, with the arithmetic computed."""

import streamlit as st

from explorer.analysis import charts, lessons
from explorer.core.i18n import N_, _, number
from explorer.core.text import shape_text
from explorer.ui import data
from explorer.ui.controls import inspect_link, show_url_notes, url_snapshot
from explorer.ui.design_state import lesson_link
from explorer.ui.show import key_result
from explorer.ui.tables import translated
from explorer.ui.words import MACS_NOTE

FIELD_COLUMNS = ("convolution", "receptive field", "jump", "MACs")
# the columns this page names itself (lessons names the others)
COLUMNS = (N_("step"), N_("top-1 err %"), N_("top-5 err %"), N_("paper: G ops"), N_("our network"),
           N_("our GMACs"), N_("network"), N_("144 crops top-1"), N_("144 crops top-5"),
           N_("GMACs (paper)"), N_("GMACs (released)"))


def table(records: list[dict], decimals: dict | None = None) -> None:
    st.table(translated(lessons.formatted(records, decimals)), hide_index=True)


st.title(_("Learn"))
show_url_notes("learn", url_snapshot(), {})  # this page takes nothing from a link
st.caption(_("Every cost on this page is computed, not typed in. {macs_note}.").format(
    macs_note=_(MACS_NOTE)))

# Everything measured on our networks first, then the layout: no table waits half-drawn.
with st.spinner(_("Measuring our networks (first visit: a few seconds)...")):
    v3 = data.analysis("inception_v3")
    with_aux = data.analysis("inception_v3", aux_logits=True)["total_params"]
    ladder = [{"step": step, "top-1 err %": top1, "top-5 err %": top5, "paper: G ops": cost,
               "our network": f"{variant} ({layout})",
               "our GMACs": data.analysis(variant, layout=layout)["total_macs"] / 1e9}
              for step, top1, top5, cost, (variant, layout) in lessons.ABLATION]
    results = [{"network": title, "top-1 err %": top1, "top-5 err %": top5,
                "144 crops top-1": top1_144, "144 crops top-5": top5_144,
                "GMACs (paper)": data.analysis(variant, layout="paper")["total_macs"] / 1e9,
                "GMACs (released)": data.analysis(variant, layout="released")["total_macs"] / 1e9}
               for title, variant, top1, top5, top1_144, top5_144 in lessons.V4_RESULTS]
    v3_paper = data.analysis("inception_v3", layout="paper")
    claims = data.rethinking_claims()
    principles = data.design_principles()
red = next(r for r in v3["rows"] if r["kind"] == "reduction")
first_a, first_b = (next(r["name"] for r in v3["rows"] if r["name"].startswith(stage))
                    for stage in ("inception_a.", "inception_b."))
paper_a = next(r["name"] for r in v3_paper["rows"] if r["name"].startswith("inception_a."))
released_5x5 = [r for r in data.analysis("inception_v3", "layer")["rows"]
                if r["name"].startswith(first_a + ".branches.5x5.")]

st.header(_("1. Factorizing convolutions"))
c1, c2 = st.columns(2)
with c1:
    st.markdown(_("**A 5x5 conv vs two stacked 3x3 convs** (Rethinking, section 3.1, Figure 1): "
                  "the receptive field stays 5x5 and the weights per channel pair go from 25 to "
                  "2 x 9 = 18."))
    st.plotly_chart(charts.kernel_diagram(5, stacked=True), key="diagram_5x5")
    st.caption(_("Both see 5x5 pixels: the second 3x3 (dark) reads 3x3 outputs of the first, "
                 "each of which saw 3x3 pixels."))
    a, b = st.columns(2)
    channels = a.number_input(_("channels in = out"), 1, 4096, 192, key="f_channels")
    grid = b.number_input(_("grid (px)"), 1, 512, 35, key="f_grid")
    f = lessons.factorize_5x5(int(channels), int(grid))
    table([{"convolution": k, "MACs": f[k]} for k in ("5x5", "two 3x3")])
    st.metric(_("saving"), f"{100 * f['saving']:.1f} %", help=_("1 - (2 x 9) / 25, for any channels "
                                                             "and grid: the paper's 28 %"))
    table([{c: r[c] for c in FIELD_COLUMNS}
           for r in lessons.factorization_fields(int(channels), int(grid))])
    st.caption(_("Measured as networks by the explorer's own analysis: equal fields, unequal MACs."))
    inspect_link(_("Figure 5 in Inception-v3's paper layout (two 3x3), on Inspect"),
                 "inception_v3", "layer", paper_a, key="link_5x5", layout="paper")
    if released_5x5:
        kernel = " x ".join(map(str, released_5x5[-1]["output_shape"]))
        st.markdown(_("**A lesson in itself**: the *released* Inception-v3 (the checkpoint "
                      "torchvision and timm load) keeps GoogLeNet's 5x5 branch in its 35x35 "
                      "modules ({block}: a 1x1 conv, then a 5x5 conv to {shape}); only the "
                      "paper layout draws Figure 5's two 3x3 convs.").format(block=first_a,
                                                                               shape=kernel))
        inspect_link(_("The released Inception-v3's 5x5 branch, on Inspect"), "inception_v3",
                     "layer", first_a, key="link_5x5_released", layout="released")
    lesson_link("keep_5x5")
with c2:
    st.markdown(_("**An n x n conv vs a 1 x n conv then an n x 1 conv** (Rethinking, section 3.2, "
                  "Figures 3 and 6): the n x 1 conv reads n outputs of the 1 x n conv, each of "
                  "which saw n pixels of a row, so the receptive field stays n x n, while the "
                  "weights per channel pair go from n² to 2n."))
    n = st.slider("n", 2, 9, 7, key="f_n")
    st.caption(_("n = {n}: {square} weights per channel pair become {pair}; both see {n}x{n} "
                 "pixels. Orange: one 1x{n} kernel; green: the {n}x1 kernel, over {n} outputs "
                 "of the 1x{n} conv; pale: the pixels those other outputs saw.").format(
                     n=n, square=n * n, pair=2 * n))
    st.plotly_chart(charts.kernel_diagram(n), key="diagram_1xn")
    g = lessons.factorize_asymmetric(n, int(channels), int(grid))
    table([{"convolution": k.replace("n", str(n)), "MACs": g[k]} for k in ("n x n", "1 x n + n x 1")])
    st.metric(_("saving"), f"{100 * g['saving']:.1f} %", help=_("1 - 2n / n² with n = {n}").format(n=n))
    table([{c: r[c] for c in FIELD_COLUMNS}
           for r in lessons.factorization_fields(int(channels), int(grid), n)])
    st.caption(_("Measured as networks by the explorer's own analysis: equal fields, unequal MACs "
                 "(an even n cannot pad both sides alike: the grid grows by one).") if n % 2 == 0
               else _("Measured as networks by the explorer's own analysis: equal fields, unequal MACs."))
    st.caption(_("Same channels and grid as on the left. The paper found this factorization works "
                 "well on medium grids (12 to 20 px; 17x17 in Inception-v3, with n = 7) and poorly "
                 "early in the network."))
    inspect_link(_("Inception-v3's 17x17 blocks (1x7 + 7x1), on Inspect"), "inception_v3", "layer",
                 first_b, key="link_1xn")
    lesson_link("no_1x7")

st.header(_("2. Reducing the grid"))
st.markdown(_("Going from k channels on a d x d grid to 2k channels on d/2 x d/2 "
              "(Rethinking, section 5, Figures 9 and 10), with 3x3 convs:"))
a, b = st.columns(2)
k = a.number_input(_("k (channels in)"), 1, 2048, 320, key="r_k")
d = b.number_input(_("d (grid in, px)"), 3, 512, 35, key="r_d")
table(lessons.grid_reduction(int(k), int(d)))
st.caption(_("Pooling first is 4x cheaper but squeezes the representation below the output "
             "(a bottleneck); the parallel block is cheaper still and never squeezes it. Measured "
             "on our Inception-v3: its first grid reduction ({block}, Figure 10 with deeper "
             "branches) takes {before} to {after} in {macs} MACs.").format(
                 block=red["name"], before=shape_text(red["input_shape"]),
                 after=shape_text(red["output_shape"]), macs=number(red["macs"])))
table([{c: r[c] for c in ("method", "field before", "jump before", "field after", "jump after")}
       for r in lessons.reduction_fields(int(k), int(d))])
before = v3["rows"][v3["rows"].index(red) - 1]
st.caption(_("Receptive field (in input-grid units) and jump before and after each reduction, "
             "measured by the same analysis. On Inception-v3, {block} takes the field from "
             "{field_before} to {field_after} input px and the jump from {jump_before} to "
             "{jump_after} px.").format(
                 block=red["name"], field_before=" x ".join(map(str, before["rf"])),
                 field_after=" x ".join(map(str, red["rf"])), jump_before=before["jump"][0],
                 jump_after=red["jump"][0]))
inspect_link(_("Inception-v3's {block}, on Inspect").format(block=red["name"]), "inception_v3", "block",
             red["name"],
             key="link_reduction")
lesson_link("pool_only")

st.header(_("3. Scaling the residuals"))
st.markdown(_("Inception-ResNet scales each residual branch down before adding it: with more "
              "than ~1000 filters the networks 'died' early in training otherwise (v4 paper, "
              "section 3.3). The paper gives 0.1 to 0.3; the released code uses 0.17 (35x35), "
              "0.10 (17x17) and 0.20 (8x8), and a final unscaled block without ReLU."))
a, b = st.columns([1, 3])
variant = a.radio(_("network"), ("inception_resnet_v2", "inception_resnet_v1"), key="s_variant")
scale = a.select_slider(_("scale every block"), ("reference", 0.05, 0.1, 0.2, 0.3, 0.5, 1.0),
                        key="s_scale",
                        format_func=lambda s: _("reference") if s == "reference" else str(s))
config = {} if scale == "reference" else {"scale": scale}
scales = data.residual_block_table(variant, **config)
b.plotly_chart(charts.residual_scale_chart(scales))
growth = lessons.std_growth([s["scale"] for s in scales])
unscaled = lessons.std_growth([1.0] * len(scales))
key_result(lessons.fmt_factor(growth), _("growth of the activations' std through these {adds} "
                                         "adds; unscaled: {unscaled}").format(
               adds=len(scales), unscaled=lessons.fmt_factor(unscaled)), container=a)
a.caption(_("Toy model: each branch's output as large as its input and independent of it, no "
            "normalisation on the sums."))
inspect_link(_("{variant}'s residual blocks, on Inspect").format(variant=variant), variant, "block",
             key="link_residual",
             container=a)
lesson_link("scale_1", container=a)

st.header(_("4. Auxiliary classifiers and label smoothing"))
a, b = st.columns(2)
with a:
    with_aux = data.analysis("inception_v3", aux_logits=True)["total_params"]
    st.markdown(_("**Auxiliary classifiers** hang a small softmax head off an intermediate block "
                  "and add its loss (weight 0.3 in GoogLeNet) during training only. Rethinking "
                  "found they help little early in training but regularise, especially when "
                  "batch-normalised (the 'BN-auxiliary' step that made Inception-v3)."))
    st.latex(r"\mathcal{L} = \mathcal{L}_{main} + w \cdot \mathcal{L}_{aux}")
    st.caption(_("Measured: Inception-v3's auxiliary head adds {added} parameters ({before} → "
                 "{after}, BatchNorm's scale and shift included) and no inference cost.").format(
                     added=number(with_aux - v3["total_params"]), before=number(v3["total_params"]),
                     after=number(with_aux)))
with b:
    st.markdown(_("**Label smoothing** (Rethinking, section 7) replaces the one-hot target with a "
                  "mixture of it and the uniform distribution over the K classes, so the logits "
                  "cannot grow without bound; ε = 0.1 for ImageNet (K = 1000)."))
    st.latex(r"q'(k) = (1 - \varepsilon)\,\delta_{k,y} + \frac{\varepsilon}{K}")
    q = lessons.label_smoothing(1000, 0.1)
    key_result(f"{q[0]:.4f} · {q[1]:.4f}", _("with ε = 0.1 and K = 1000: the target of the true "
                                              "class · of every other class"))
    st.caption(_("In Table 3 it lowered top-1 error from 23.1 to 22.8 %."))

st.header(_("5. What the papers measured"))
st.markdown(_("Rethinking's Table 3: each step adds to the one above (single crop, top-1 / top-5 "
              "error in %). Beside the paper's cost, our MACs for the network that step builds."))
table(ladder, {"top-1 err %": 1, "top-5 err %": 1, "paper: G ops": 1})
st.caption(_("'+ factorized 7x7' is the stem's first 7x7 conv made into 3x3 convs (Table 1's "
             "three 3x3 convs); the 1x7 / 7x1 convs of the 17x17 modules are in Inception-v2 "
             "already."))
st.caption(_("Source: {source}, Table 3. The paper does not give every width of Inception-v2/v3's "
             "paper layouts; ours take the released widths where it is silent, so our MACs differ "
             "from its cost column there (see each layout's notes on Inspect). BN-GoogLeNet is "
             "measured on torchvision's GoogLeNet layout (BN after every conv).").format(
                 source=lessons.RETHINKING))

st.markdown(_("The Inception-v4 paper's single-model results (error in %), beside our measured "
              "cost of each network in its paper and released layouts:"))
table(results, dict.fromkeys(("top-1 err %", "top-5 err %", "144 crops top-1", "144 crops top-5"), 1))
st.caption(_("Source: {source}, single crop and 144 crops. The ensemble of Inception-v4 and three "
             "Inception-ResNet-v2 reached 3.08 % top-5 error on the test set.").format(
                 source=lessons.V4_PAPER))
st.caption(_("ResNet-151 is the v4 paper's name for He et al.'s 152-layer network (our resnet152; "
             "its paper layout strides on the first 1x1 conv): the paper quotes He et al.'s dense "
             "evaluation, which has no single-crop figure."))

st.header(_("6. The Rethinking paper's own claims, computed"))
st.markdown(_("Section 6 of the paper says its network \"is 42 layers deep\" and costs \"only "
              "about 2.5 higher than that of GoogLeNet\". Beside each claim, what we compute on "
              "our build of its Table 1 (Inception-v3, paper layout):"))
table(claims)
st.caption(_("Sources: {source}, section 6 and Tables 1 and 3; GoogLeNet: 1.5 G multiply-adds (its "
             "paper, arXiv 1409.4842). The same count gives GoogLeNet {depth} layers, 22 with its "
             "classifier, as its paper counts (\"22 layers deep when counting only layers with "
             "parameters\").").format(source=lessons.RETHINKING,
                                       depth=principles["balance"][0]["depth (layers)"]))

st.header(_("7. Four general design principles (Rethinking, section 2)"))
sizes = principles["sizes"]
low = lessons.sharpest_shrink(sizes)
st.markdown(_("**1. Avoid representational bottlenecks, especially early.** The representation "
              "(C x H x W values of each block's output) should shrink gently from the input "
              "to the output."))
body = lessons.sharpest_shrink([r for r in sizes if not r["block"].startswith("stem")])
key_result(f"x{low['vs the block before']:.2f}",
           _("the sharpest one-block shrink of Inception-v3 (paper layout): at {block}, to "
             "{output}; after the stem, x{body_factor} at {body_block} (to {body_output})").format(
               block=low["block"], output=low["output"],
               body_factor=f"{body['vs the block before']:.2f}", body_block=body["block"],
               body_output=body["output"]))
st.plotly_chart(charts.representation_chart(sizes), key="representation")
st.markdown(_("**2. Higher-dimensional representations are easier to process locally.** The "
              "channels grow as the grid shrinks:"))
table(principles["widest"])
agg = principles["aggregation"]
st.markdown(_("**3. Spatial aggregation can be done over lower-dimensional embeddings.** A 1x1 "
              "conv reduces the channels before the spatial conv, with little loss (the "
              "neighbouring channels are strongly correlated)."))
key_result(_("{ratio}x fewer MACs").format(ratio=f"{agg['ratio']:.1f}"),
           _("Figure 5's 3x3 branch: {channels} channels reduced to {reduced} by a 1x1, then a "
             "{conv} ({with_1x1} MACs vs {without} without the 1x1)").format(
               channels=agg["input channels"], reduced=agg["reduced to"],
               conv=agg["spatial conv"], with_1x1=f"{agg['MACs with the 1x1']:,}",
               without=f"{agg['MACs without']:,}"))
st.markdown(_("**4. Balance the width and the depth.** Growing both together gives the most for "
              "the cost; across the family:"))
table(principles["balance"], {"GMACs": 2, "params (M)": 1})
st.caption(_("Depth: {rule}. Width: the channels of the last feature map. Paper layouts, except "
             "Inception-ResNet-v2's released one (the 55.8 M-parameter network).").format(
                 rule=_(lessons.DEPTH_RULE)))
