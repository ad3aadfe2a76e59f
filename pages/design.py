"""Design: change a block of a real network, see what it costs beside the original, race it."""

import uuid

import streamlit as st

from explorer.analysis import design as d
from explorer.core.i18n import _
from explorer.lab import LAB_VARIANTS, LabConfig, make_request
from explorer.lab.queue import get_queue
from explorer.ui import design_state as ds
from explorer.ui.graph_view import graph_view
from explorer.ui.nav import page
from explorer.variants import VARIANTS, ConfigError

st.title(_("Design bench"))
st.caption(_("Change a block of a real network: its branches, its layers' kernels, strides, "
             "paddings and channels, factorize a conv, turn the residual on or off. Every edit "
             "shows what it costs beside the original, in the block and in the whole network."))

bench = ds.current()
for note in st.session_state.pop(ds.NOTE, []):
    st.warning(_("Part of the link could not be used; the page shows what it could:"))
    st.text(note)  # plain text: a crafted value never becomes markup

# -- what is on the bench ----------------------------------------------------------------------
c1, c2, c3, c4 = st.columns([2, 1, 2, 3])
variants = list(VARIANTS)
variant = c1.selectbox(_("Network"), variants, index=variants.index(bench.variant),
                       format_func=lambda v: _(VARIANTS[v].title), key=f"d_variant:{bench.variant}")
layouts = list(VARIANTS[variant].layouts)
layout = c2.selectbox(_("Layout"), layouts, key=f"d_layout:{variant}:{bench.layout}",
                      index=layouts.index(bench.layout) if bench.layout in layouts else 0)
names = d.blocks_of(variant, layout)
name = c3.selectbox(_("Block"), names, key=f"d_block:{variant}:{layout}:{bench.name}",
                    index=names.index(bench.name) if bench.name in names else
                    names.index(d.first_block(variant, layout)))
if (variant, layout, name) != (bench.variant, bench.layout, bench.name):
    ds.start(variant, layout, name if name in names else d.first_block(variant, layout))
    st.rerun()
with c4:
    st.write("")
    b1, b2, b3 = st.columns(3, gap="small")
    b1.button(_("Original"), icon=":material/restart_alt:", help=_("back to the block as published"),
              on_click=ds.start, args=(bench.variant, bench.layout, bench.name))
    b2.button(_("Empty"), icon=":material/add_box:", help=_("start from one branch with one 1x1 conv"),
              on_click=ds.start, args=(bench.variant, bench.layout, bench.name, d.empty_block(),
                                       bench.whole))
    b3.button(_("Bottleneck"), icon=":material/compress:",
              help=_("start from a ResNet bottleneck: 1x1 conv to a quarter of the channels, 3x3 "
                     "conv, 1x1 conv back, added onto the input"),
              on_click=ds.start, args=(bench.variant, bench.layout, bench.name, d.bottleneck_block(
                  d.block_input_channels(bench.variant, bench.layout, bench.name)), bench.whole))

block = bench.block
edit_col, view_col = st.columns([2, 3])

# -- the edits ---------------------------------------------------------------------------------
with edit_col:
    tag = d.encode(block)[-12:]  # widgets made afresh for every design: they show its values
    r1 = r2 = st.container()
    # every edit is a callback: it runs once per change, before the run that shows it
    r1.toggle(_("Residual: add onto the input"), value=block.op == "residual", key=f"d_res:{tag}",
              on_change=ds.apply_widget, args=(f"d_res:{tag}", d.set_residual))
    if block.op == "residual":
        r2.number_input(_("Residual scale"), 0.01, 10.0, float(block.scale), 0.05,
                        key=f"d_scale:{tag}", on_change=ds.apply_widget,
                        args=(f"d_scale:{tag}", lambda b, v: d.set_residual(b, True, v)))
        r3, r4 = st.columns(2)
        r3.toggle(_("1x1 expansion"), value=block.expand, key=f"d_expand:{tag}",
                  on_change=ds.apply_widget, args=(f"d_expand:{tag}", d.set_expand),
                  help=_("Inception-ResNet: a linear 1x1 conv brings the concatenated branches "
                         "back to the shortcut's channels. Off (ResNet): the branches must give "
                         "them."))
        r4.toggle(_("Projection shortcut"), value=bool(block.shortcut), key=f"d_proj:{tag}",
                  on_change=ds.apply_widget, args=(f"d_proj:{tag}", d.set_projection),
                  help=_("a 1x1 conv (with the block's stride) on the shortcut, so the add works "
                         "when the block changes the grid or the channels; off: the identity"))
    stage_name = bench.name.partition(".")[0]
    st.toggle(_("Replace every block of stage {stage}").format(stage=stage_name), value=bench.whole,
              key=f"d_whole:{tag}", on_change=ds.set_whole, args=(f"d_whole:{tag}",))

    branches = [n for n, _ in block.branches]
    picked = st.session_state.get(ds.SELECTED) or (branches[0], 0)
    if picked[0] not in branches:
        picked = (branches[0], 0)
    branch = st.selectbox(_("Branch"), branches, index=branches.index(picked[0]),
                          key=f"d_branch:{tag}:{picked[0]}")
    layers = block.branch(branch)
    index = st.selectbox(_("Layer"), range(len(layers)),
                         index=min(picked[1], len(layers) - 1) if branch == picked[0] else 0,
                         format_func=lambda i: f"{i}: {d.layer_text(layers[i])}",
                         key=f"d_layer:{tag}:{branch}:{picked[1]}")
    st.session_state[ds.SELECTED] = (branch, index)
    layer = layers[index]
    key = f"{tag}:{branch}:{index}"
    if isinstance(layer, d.Layer):
        ops = ("conv", "maxpool", "avgpool")
        changed = {"on_change": ds.layer_changed, "args": (key, branch, index, layer)}
        st.segmented_control(_("Op"), ops, default=layer.op if layer.op in ops else None,
                             key=f"d_op:{key}", **changed)
        kh, kw = d.pair(layer.get("kernel", 1))
        sh, sw = d.pair(layer.get("stride", 1 if layer.op == "conv" else layer.get("kernel", 1)))
        ph, pw = d.pair(layer.get("padding", 0))
        k1, k2, k3 = st.columns(3)
        k1.number_input(_("kernel h"), 1, 15, kh, key=f"d_kh:{key}", **changed)
        k2.number_input(_("kernel w"), 1, 15, kw, key=f"d_kw:{key}", **changed)
        k3.checkbox(_("keep the grid"), value=True, key=f"d_keep:{key}",
                    help=_("padding (k - 1) / 2 when a kernel changes"))
        s1, s2, s3 = st.columns(3)
        s1.number_input(_("stride"), 1, 4, max(sh, sw), key=f"d_s:{key}", **changed)
        s2.number_input(_("padding h"), 0, 7, ph, key=f"d_ph:{key}", **changed)
        s3.number_input(_("padding w"), 0, 7, pw, key=f"d_pw:{key}", **changed)
        if layer.op == "conv":
            st.number_input(_("output channels"), 0, 4096, int(layer.get("out") or 64),
                            key=f"d_out:{key}", help=_("0 is refused: a conv needs at least one "
                                                       "channel"), **changed)
    else:
        st.caption(_("Layer {index} is a nested {op} (the 1x3 | 3x1 split): remove it or edit it "
                     "in the JSON.").format(index=index, op=layer.op))
    a1, a2 = st.columns(2)
    a3, a4 = st.columns(2)
    ways = d.factorizable(layer)
    for way in ways:
        label = _("5x5 → two 3x3") if way == "3x3" else _("n x n → 1 x n, n x 1")
        a1.button(label, key=f"d_fact:{way}:{key}", on_click=ds.apply,
                  args=(d.factorize, branch, index, way), help=_("factorize this conv"))
    if d.unfactorizable(layers, index):
        a2.button(_("Join with next"), key=f"d_join:{key}", on_click=ds.apply,
                  args=(d.unfactorize, branch, index), help=_("undo a factorization: one conv"))
    a3.button(_("Add a layer after"), key=f"d_add:{key}", on_click=ds.apply,
              args=(d.add_layer, branch, index + 1), icon=":material/add:")
    a4.button(_("Remove this layer"), key=f"d_rm:{key}", on_click=ds.apply,
              args=(d.remove_layer, branch, index),
              icon=":material/delete:")
    st.text_input(_("Branch name"), value=branch, key=f"d_name:{key}", max_chars=40,
                  on_change=ds.apply_widget,
                  args=(f"d_name:{key}", lambda b, v: d.rename_branch(b, branch, v)))
    m1, m2 = st.columns(2)
    m1.button(_("Add a branch"), icon=":material/add:", key=f"d_addb:{tag}",
              help=_("a new branch: one 1x1 conv to 32 channels"),
              on_click=ds.apply, args=(d.add_branch, d.free_name(branches)))
    m2.button(_("Remove this branch"), icon=":material/delete:", key=f"d_rmb:{key}",
              on_click=ds.apply, args=(d.remove_branch, branch))

# -- what it costs -----------------------------------------------------------------------------
result = ds.Bench(bench.variant, bench.layout, bench.name, block, bench.whole).result()
with view_col:
    if st.session_state.get(ds.ERROR):
        st.error(_("That edit cannot run, so the last valid design stays: {why}").format(
            why=st.session_state[ds.ERROR]), icon=":material/block:")
    st.html(ds.figure_html(result))
    where = (_("every block of {stage}").format(stage=result.placed) if bench.whole else bench.name)
    st.caption(_("{block} of {title} ({layout} layout), input {shape}; the network with {where} "
                 "designed. MACs: multiply-accumulates of convs; params include BatchNorm's.").format(
                     block=bench.name, title=_(VARIANTS[bench.variant].title), layout=_(bench.layout),
                     shape=" x ".join(map(str, result.in_shape)), where=where))
    dot = ds.block_dot(result)
    graph_view(ds.block_svg(dot), key="design_graph", height=460, fit="all",
               selected=f"{bench.name}.branches.{branch}.{index}",
               on_click=ds.select_node)

# computed only while open (a walk with fields of the whole network)
rows = st.expander(_("The whole network with the design: every block re-threaded"),
                   key="d_network", on_change="rerun")
if rows.open:
    rows.dataframe(ds.network_rows(result), hide_index=True,
                 column_config={k: st.column_config.NumberColumn(format="localized")
                                for k in ("params", "Δ params", "MACs", "Δ MACs")})

# -- a design travels --------------------------------------------------------------------------
st.subheader(_("Take it with you"))
stem = f"{bench.variant}_{bench.name}_design"
e1, e2, e3, e4 = st.columns(4)
e1.download_button("JSON", d.to_json(block), f"{stem}.json", "application/json",
                   icon=":material/download:", help=_("the block schema; --replace NAME=FILE reads it"))
e2.download_button("SVG", ds.block_svg(dot), f"{stem}.svg", "image/svg+xml",
                   icon=":material/download:")
e3.download_button("PNG", lambda: ds.block_png(dot), f"{stem}.png", "image/png",
                   icon=":material/download:")
uploaded = e4.file_uploader(_("Open a design (JSON)"), type=["json"], key="d_upload",
                            label_visibility="collapsed")
if uploaded is not None and st.session_state.get("d_upload_seen") != uploaded.file_id:
    st.session_state["d_upload_seen"] = uploaded.file_id
    ds.apply(lambda _old: d.from_json(uploaded.getvalue()[:d.MAX_JSON_BYTES]))
    st.rerun()  # once per file: the figures above show the uploaded design
st.caption(_("The page's address holds the design: copy it to show this design to a class."))
with st.expander(_("Python that builds it")):
    st.code(d.snippet(block, bench.variant, bench.layout, bench.name, bench.whole), language="python")

# -- race it -----------------------------------------------------------------------------------
st.subheader(_("Race against the original"))
if bench.variant not in LAB_VARIANTS:
    st.info(_("The Lab trains {variants}; open a block of one of them to race it.").format(
        variants=", ".join(LAB_VARIANTS)))
else:
    st.caption(_("Both networks go to the Lab's race: the same digits, seeds and steps, at the "
                 "Lab's width 0.25 (the design's channels scaled alike), 10 classes."))
    if st.button(_("Race against the original"), icon=":material/sprint:", type="primary"):
        try:
            request = make_request(
                [LabConfig(bench.variant, layout=bench.layout),
                 LabConfig(bench.variant, layout=bench.layout, design=d.encode(block),
                           design_at=result.placed)])
            who = st.session_state.setdefault("lab_who", uuid.uuid4().hex)
            st.session_state["lab_job"] = get_queue().submit(request, who)
        except (ConfigError, OSError) as err:
            st.error(_("The race cannot start: {why}").format(why=err))
        else:
            st.switch_page(page("lab"))
