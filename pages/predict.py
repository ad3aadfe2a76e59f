"""Predict: top-5 ImageNet classes of real photos with real weights, and what each network sees."""

import html

import streamlit as st
import torch

from explorer.analysis import charts
from explorer.core.i18n import N_, _, again
from explorer.core.images import SUPPORTED, ImageError, distinct, load_image, preview, sample_images
from explorer.core.text import md_escape
from explorer.runtime import workers
from explorer.runtime.fast import PRECISIONS, supported_precisions, unsupported
from explorer.runtime.loaded import NOTES as LOADED_NOTES
from explorer.runtime.loaded import load_estimate
from explorer.runtime.offline import fetch_command, missing_weights, uploader_label, where
from explorer.runtime.saliency import channel_grid, overlay
from explorer.ui import answers, graph_panel, language
from explorer.variants import VARIANTS
from explorer.weights.checkpoints import preprocess_for, store_upload
from explorer.weights.pretrained import REGISTRY, find_spec, specs_for

UPLOAD = "a checkpoint file..."  # the option's value; shown as _(UPLOAD_LABEL)
UPLOAD_LABEL = N_("a checkpoint file...")
DEFAULT = ["googlenet", "inception_v3", "inception_v4", "inception_resnet_v2"]
HERE = {"folder": N_("on this server"), "cache": N_("downloaded"), None: N_("not here")}

st.title(_("Predict"))
workers.warm_up()  # a worker's interpreter imports torch while the photos are chosen
st.markdown(_("Real ImageNet weights, each with its own preprocessing. Choose photos and networks; "
              "weights not yet on this server are downloaded on first use (torch.hub or Hugging "
              "Face cache), or read from the folder in `$INCEPTION_EXPLORER_WEIGHTS`."))

with st.sidebar:
    chosen = st.multiselect(_("Variants"), list(VARIANTS), default=DEFAULT[:2], key="predict_variants",
                            bind="query-params")
    choices, checkpoints = {}, {}
    for variant in chosen:
        tags = [s.tag for s in specs_for(variant)] + [UPLOAD]
        choices[variant] = st.selectbox(
            _("{variant} weights").format(variant=variant), tags, key=f"weights_{variant}",
            format_func=lambda t, v=variant: _(UPLOAD_LABEL) if t == UPLOAD
            else f"{t} ({_(HERE[where(find_spec(v, t))])})",
            help=_("public weights (on this server, or downloaded once), or your own file"))
        if choices[variant] == UPLOAD:
            # in the sidebar, so that it is drawn on every run: what it shows is what is used
            checkpoints[variant] = st.file_uploader(
                uploader_label(variant), type=["pth", "pt", "safetensors", "bin"],
                key=f"ckpt_{variant}", help=_("torchvision, timm, Cadene, facenet or explorer format; "
                                              "read without unpickling code"))
    cuda = torch.cuda.is_available()
    device = st.radio(_("Device"), ("CPU", "GPU (cuda)"), key="predict_device", disabled=not cuda,
                      format_func=lambda d: d if d == "CPU" else _("GPU (cuda)"),
                      captions=("", "" if cuda else _("no CUDA GPU on this server")))
    device = "cuda" if device != "CPU" and cuda else "cpu"
    precisions = supported_precisions(device)
    precision = st.radio(_("Precision"), precisions, key="predict_precision", horizontal=True,
                         help=_("the arithmetic of the optimised network that answers (BatchNorm "
                                "folded into the convolutions, channels-last memory); Grad-CAM and "
                                "the feature maps always use the plain float32 network"))
    for name in PRECISIONS:
        if name not in precisions:
            st.caption(_("{precision} is not offered: {why}").format(
                precision=name, why=unsupported(name, device)))

with language.expander(_("Weights on this server"), key="weights_here"):
    status = {s.name: where(s) for s in REGISTRY}
    st.dataframe([{"weights": name, "where": _(HERE[w])} for name, w in status.items()],
                 hide_index=True, column_config={"weights": _("weights"), "where": _("where")})
    missing = [name for name, w in status.items() if w is None]
    if missing:
        st.markdown(_("For a server without internet, fetch the others where there is internet "
                      "and start the app with `INCEPTION_EXPLORER_WEIGHTS=DIR`:"))
        st.code(fetch_command(missing), language="bash")

samples = sample_images()
left, right = st.columns([3, 2])
uploads = left.file_uploader(_("Photos ({formats})").format(formats=_(SUPPORTED)), accept_multiple_files=True,
                             type=["jpg", "jpeg", "png", "webp", "gif", "tif", "tiff", "bmp"])
picked = right.pills(_("Or samples"), list(samples), selection_mode="multi", default=["cat"],
                     key="samples", help=_("openly licensed photos; see assets/samples/CREDITS.md"))

photos, same = distinct([*((u.name, u.getvalue()) for u in uploads or []),
                          *((name, samples[name].read_bytes()) for name in picked or [])])
images, problems, sent = [], [], []  # sent: the photos read here, as bytes for the workers
for name, raw in photos:
    try:
        images.append((name, load_image(raw, name=name)))
        sent.append((name, raw))
    except ImageError as err:
        problems.append(str(err))
for problem in problems:
    st.error(md_escape(problem), icon=":material/broken_image:")
for name, kept in same:
    st.caption(_("{name} is the same photo as {kept}: shown once.").format(
        name=md_escape(name), kept=md_escape(kept)))
if not chosen or not images:
    st.info(_("Choose at least one variant and one photo."))
    st.stop()


def chosen_weights(variant: str):
    """(weights for the worker, its name for the user, its registry entry) for the sidebar's
    choice, or None after one short message: what is missing and the one thing to do."""
    weights = choices[variant]
    spec = None if weights == UPLOAD else find_spec(variant, weights)
    if spec is not None:
        return weights, spec.name, spec
    file = checkpoints.get(variant)
    if file is None:
        st.info(missing_weights(variant, None), icon=":material/upload_file:")
        return None
    try:  # kept in the explorer's cache folder, which the workers read too
        return str(store_upload(file.getvalue(), file.name)), file.name, None
    except ValueError as err:
        st.error(md_escape(err))
        return None


answered = {}  # variant -> (weights, label, spec, its answer)
for col, variant in zip(st.columns(len(chosen)), chosen):
    with col:
        st.subheader(variant)
        pre = preprocess_for(variant, None if choices[variant] == UPLOAD else choices[variant])
        # the photos as this network sees them, whatever happens next
        st.image([preview(img, pre) for _, img in images], width=96,
                 caption=[name for name, _ in images])
        st.caption(_("the {size} px crop {variant} sees ({how})").format(
            size=pre.input_size, variant=variant, how=pre.describe()))
        st.caption(_("{needs} to load and run {n} photo(s)").format(
            needs=load_estimate(variant, len(images), device=device).needs(), n=len(images)))
        ready = chosen_weights(variant)
        if ready is None:
            continue
        weights, label, spec = ready
        # in a worker process, where the model stays loaded (explorer.ui.answers)
        answer = answers.predict(variant, weights, label, spec, device=device,
                                 precision=precision, photos=sent, key=f"predict_{variant}")
        if answer is None:
            continue
        answered[variant] = (weights, label, spec, answer)
        if answer["note"]:
            st.warning(answer["note"], icon=":material/memory:")
        shown = md_escape(label) if choices[variant] == UPLOAD else label  # a user's file name
        st.caption(_("{weights} · {format} checkpoint · {n} image(s) in {ms} ms on {device}, "
                     "{precision}").format(
                         weights=shown, format=answer["checkpoint_format"], n=len(images),
                         ms=f"{answer['ms']:.0f}", device=answer["device"].upper(),
                         precision=answer["precision"]))
        for note in answer["notes"]:  # English, as the worker's model cache keeps them
            st.caption(_("note: {note}").format(note=md_escape(again(note, *LOADED_NOTES))))
        for i, ((name, _image), result) in enumerate(zip(images, answer["results"])):
            if "error" in result:
                st.error(md_escape(result["error"]), icon=":material/broken_image:")
            else:
                st.plotly_chart(charts.top_k_bars(result["top"], title=html.escape(name)),
                                key=f"top_{variant}_{i}")

st.header(_("What the network sees"))
if not answered:
    st.info(_("Grad-CAM and the feature maps of every block appear here once a network has "
              "weights."), icon=":material/visibility:")
    st.stop()

c1, c2 = st.columns(2)
variant = c1.selectbox(_("Network"), list(answered), key="see_variant")
picked_index = c2.selectbox(_("Photo"), range(len(images)), format_func=lambda i: images[i][0],
                            key="see_image")
weights, label, spec, answer = answered[variant]
# Grad-CAM and the feature maps need gradients and hooks: the plain model, where it answered
seen = answers.what_it_sees(variant, weights, label, spec, device=answer["device"],
                            photo=sent[picked_index], key=f"see_{variant}")
if seen is None:
    st.stop()
image = images[picked_index][1]
crop = preview(image, seen["preprocess"])
cam = seen["cam"]

cam_col, maps_col = st.columns([2, 3])
with cam_col:
    st.image(overlay(crop, cam["heatmap"]), caption=_(
        "Grad-CAM for '{label}' on the output of {block} ({rows}x{cols} grid), over the {size} px "
        "crop the network sees").format(label=cam["label"], block=cam["block"],
                                        rows=cam["coarse"].shape[0], cols=cam["coarse"].shape[1],
                                        size=seen["preprocess"].input_size))
with maps_col:
    names = [m["name"] for m in seen["maps"]]
    key = f"see_block_{variant}"
    st.session_state.setdefault(key, names[len(names) // 2])  # the graph's clicks set it too
    graph_panel.block_picker(variant, names, key=key)
    block = st.select_slider(_("Block"), names, key=key)
    m = seen["maps"][names.index(block)]
    st.image(channel_grid(m["maps"], columns=8), clamp=True, width="stretch",
             caption=_("{block}: output {shape}; the 16 channels with the highest mean "
                       "activation ({channels}, ...), each scaled to its own range").format(
                           block=block, shape=f"{m['shape'][0]} x {m['shape'][1]} x {m['shape'][2]}",
                           channels=", ".join(map(str, m["top_channels"][:8]))))
