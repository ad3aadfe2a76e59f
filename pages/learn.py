"""Learn: the design rules of the Inception papers, with the arithmetic computed."""

import streamlit as st

from explorer.analysis import charts, lessons
from explorer.analysis.rows import MACS_NOTE
from explorer.core.text import shape_text
from explorer.ui import data
from explorer.ui.controls import inspect_link, show_url_notes, url_snapshot
from explorer.ui.design_state import lesson_link

FIELD_COLUMNS = ("convolution", "receptive field", "jump", "MACs")

st.title("Learn")
show_url_notes("learn", url_snapshot(), {})  # this page takes nothing from a link
st.caption(f"Every cost on this page is computed, not typed in. {MACS_NOTE}.")

# Everything measured on our networks first, then the layout: no table waits half-drawn.
with st.spinner("Measuring our networks (first visit: a few seconds)..."):
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
red = next(r for r in v3["rows"] if r["kind"] == "reduction")
first_a, first_b = (next(r["name"] for r in v3["rows"] if r["name"].startswith(stage))
                    for stage in ("inception_a.", "inception_b."))

st.header("1. Factorizing convolutions")
c1, c2 = st.columns(2)
with c1:
    st.markdown("**A 5x5 conv vs two stacked 3x3 convs** (Rethinking, section 3.1, Figure 1): "
                "the receptive field stays 5x5 and the weights per channel pair go from 25 to "
                "2 x 9 = 18.")
    st.plotly_chart(charts.kernel_diagram(5, stacked=True), key="diagram_5x5")
    st.caption("Both see 5x5 pixels: the second 3x3 (dark) reads 3x3 outputs of the first, "
               "each of which saw 3x3 pixels.")
    a, b = st.columns(2)
    channels = a.number_input("channels in = out", 1, 4096, 192, key="f_channels")
    grid = b.number_input("grid (px)", 1, 512, 35, key="f_grid")
    f = lessons.factorize_5x5(int(channels), int(grid))
    st.table(lessons.formatted([{"convolution": k, "MACs": f[k]} for k in ("5x5", "two 3x3")]),
             hide_index=True)
    st.metric("saving", f"{100 * f['saving']:.1f} %", help="1 - (2 x 9) / 25, for any channels "
              "and grid: the paper's 28 %")
    st.table(lessons.formatted([{c: r[c] for c in FIELD_COLUMNS}
                                for r in lessons.factorization_fields(int(channels), int(grid))]),
             hide_index=True)
    st.caption("Measured as networks by the explorer's own analysis: equal fields, unequal MACs.")
    inspect_link("Inception-v3's 35x35 blocks, on Inspect", "inception_v3", "layer",
                 first_a, key="link_5x5")
    lesson_link("keep_5x5")
with c2:
    st.markdown("**An n x n conv vs a 1 x n conv then an n x 1 conv** (Rethinking, section 3.2, "
                "Figures 3 and 6): the n x 1 conv reads n outputs of the 1 x n conv, each of "
                "which saw n pixels of a row, so the receptive field stays n x n, while the "
                "weights per channel pair go from n² to 2n.")
    n = st.slider("n", 2, 9, 7, key="f_n")
    st.caption(f"n = {n}: {n * n} weights per channel pair become {2 * n}; both see {n}x{n} "
               f"pixels. Orange: one 1x{n} kernel; green: the {n}x1 kernel, over {n} outputs "
               f"of the 1x{n} conv; pale: the pixels those other outputs saw.")
    st.plotly_chart(charts.kernel_diagram(n), key="diagram_1xn")
    g = lessons.factorize_asymmetric(n, int(channels), int(grid))
    st.table(lessons.formatted([{"convolution": k.replace("n", str(n)), "MACs": g[k]}
                                for k in ("n x n", "1 x n + n x 1")]), hide_index=True)
    st.metric("saving", f"{100 * g['saving']:.1f} %", help=f"1 - 2n / n² with n = {n}")
    st.table(lessons.formatted([{c: r[c] for c in FIELD_COLUMNS} for r in
                                lessons.factorization_fields(int(channels), int(grid), n)]),
             hide_index=True)
    st.caption("Measured as networks by the explorer's own analysis: equal fields, unequal MACs"
               + (" (an even n cannot pad both sides alike: the grid grows by one)."
                  if n % 2 == 0 else "."))
    st.caption("Same channels and grid as on the left. The paper found this factorization works "
               "well on medium grids (12 to 20 px; 17x17 in Inception-v3, with n = 7) and poorly "
               "early in the network.")
    inspect_link("Inception-v3's 17x17 blocks (1x7 + 7x1), on Inspect", "inception_v3", "layer",
                 first_b, key="link_1xn")
    lesson_link("no_1x7")

st.header("2. Reducing the grid")
st.markdown("Going from k channels on a d x d grid to 2k channels on d/2 x d/2 "
            "(Rethinking, section 5, Figures 9 and 10), with 3x3 convs:")
a, b = st.columns(2)
k = a.number_input("k (channels in)", 1, 2048, 320, key="r_k")
d = b.number_input("d (grid in, px)", 3, 512, 35, key="r_d")
st.table(lessons.formatted(lessons.grid_reduction(int(k), int(d))), hide_index=True)
st.caption(f"Pooling first is 4x cheaper but squeezes the representation below the output "
           f"(a bottleneck); the parallel block is cheaper still and never squeezes it. Measured on "
           f"our Inception-v3: its first grid reduction ({red['name']}, Figure 10 with deeper "
           f"branches) takes {shape_text(red['input_shape'])} to "
           f"{shape_text(red['output_shape'])} in {red['macs']:,} MACs.")
st.table(lessons.formatted([{c: r[c] for c in ("method", "field before", "jump before",
                                                "field after", "jump after")}
                            for r in lessons.reduction_fields(int(k), int(d))]), hide_index=True)
before = v3["rows"][v3["rows"].index(red) - 1]
st.caption(f"Receptive field (in input-grid units) and jump before and after each reduction, "
           f"measured by the same analysis. On Inception-v3, {red['name']} takes the field "
           f"from {' x '.join(map(str, before['rf']))} to {' x '.join(map(str, red['rf']))} "
           f"input px and the jump from {before['jump'][0]} to {red['jump'][0]} px.")
inspect_link(f"Inception-v3's {red['name']}, on Inspect", "inception_v3", "block", red["name"],
             key="link_reduction")
lesson_link("pool_only")

st.header("3. Scaling the residuals")
st.markdown("Inception-ResNet scales each residual branch down before adding it: with more than "
            "~1000 filters the networks 'died' early in training otherwise (v4 paper, section 3.3). "
            "The paper gives 0.1 to 0.3; the released code uses 0.17 (35x35), 0.10 (17x17) and "
            "0.20 (8x8), and a final unscaled block without ReLU.")
a, b = st.columns([1, 3])
variant = a.radio("network", ("inception_resnet_v2", "inception_resnet_v1"), key="s_variant")
scale = a.select_slider("scale every block", ("reference", 0.05, 0.1, 0.2, 0.3, 0.5, 1.0),
                        key="s_scale")
config = {} if scale == "reference" else {"scale": scale}
scales = data.residual_block_table(variant, **config)
b.plotly_chart(charts.residual_scale_chart(scales))
growth = lessons.std_growth([s["scale"] for s in scales])
unscaled = lessons.std_growth([1.0] * len(scales))
a.caption(f"Toy model (each branch's output as large as its input and independent of it, no "
          f"normalisation on the sums): through these {len(scales)} adds the activations' std "
          f"grows {lessons.fmt_factor(growth)}; unscaled it would grow "
          f"{lessons.fmt_factor(unscaled)}.")
inspect_link(f"{variant}'s residual blocks, on Inspect", variant, "block", key="link_residual",
             container=a)
lesson_link("scale_1", container=a)

st.header("4. Auxiliary classifiers and label smoothing")
a, b = st.columns(2)
with a:
    with_aux = data.analysis("inception_v3", aux_logits=True)["total_params"]
    st.markdown("**Auxiliary classifiers** hang a small softmax head off an intermediate block "
                "and add its loss (weight 0.3 in GoogLeNet) during training only. Rethinking "
                "found they help little early in training but regularise, especially when "
                "batch-normalised (the 'BN-auxiliary' step that made Inception-v3).")
    st.latex(r"\mathcal{L} = \mathcal{L}_{main} + w \cdot \mathcal{L}_{aux}")
    st.caption(f"Measured: Inception-v3's auxiliary head adds {with_aux - v3['total_params']:,} "
               f"parameters ({v3['total_params']:,} → {with_aux:,}, BatchNorm's scale and "
               f"shift included) and no inference cost.")
with b:
    st.markdown("**Label smoothing** (Rethinking, section 7) replaces the one-hot target with a "
                "mixture of it and the uniform distribution over the K classes, so the logits "
                "cannot grow without bound; ε = 0.1 for ImageNet (K = 1000).")
    st.latex(r"q'(k) = (1 - \varepsilon)\,\delta_{k,y} + \frac{\varepsilon}{K}")
    q = lessons.label_smoothing(1000, 0.1)
    st.caption(f"With ε = 0.1 and K = 1000: the true class gets {q[0]:.4f}, every other "
               f"class {q[1]:.4f}. In Table 3 it lowered top-1 error from 23.1 to 22.8 %.")

st.header("5. What the papers measured")
st.markdown("Rethinking's Table 3: each step adds to the one above (single crop, top-1 / top-5 "
            "error in %). Beside the paper's cost, our MACs for the network that step builds.")
st.table(lessons.formatted(ladder, {"top-1 err %": 1, "top-5 err %": 1, "paper: G ops": 1}),
         hide_index=True)
st.caption(f"Source: {lessons.RETHINKING}, Table 3. The paper does not give every width of "
           "Inception-v2/v3's paper layouts; ours take the released widths where it is silent, "
           "so our MACs differ from its cost column there (see each layout's notes on Inspect). "
           "BN-GoogLeNet is measured on torchvision's GoogLeNet layout (BN after every conv).")

st.markdown("The Inception-v4 paper's single-model results (error in %), beside our measured "
            "cost of each network in its paper and released layouts:")
st.table(lessons.formatted(results, dict.fromkeys(
    ("top-1 err %", "top-5 err %", "144 crops top-1", "144 crops top-5"), 1)), hide_index=True)
st.caption(f"Source: {lessons.V4_PAPER}, single crop and 144 crops. The ensemble of "
           "Inception-v4 and three Inception-ResNet-v2 reached 3.08 % top-5 error on the test set.")
