"""Predict: top-5 ImageNet classes of real photos with real weights, and what each network sees."""

import time

import streamlit as st
import torch

from explorer import charts
from explorer.download import DownloadError
from explorer.images import SUPPORTED, ImageError, load_image, preview, sample_images
from explorer.inference import classify_or_fall_back, load_estimate, store_upload
from explorer.memory import MemoryRefused
from explorer.pretrained import UnknownWeights, specs_for
from explorer.saliency import channel_grid, overlay
from explorer.ui import data
from explorer.variants import VARIANTS, ConfigError
from explorer.weights import WeightsError

UPLOAD = "a checkpoint file..."
DEFAULT = ["googlenet", "inception_v3", "inception_v4", "inception_resnet_v2"]

st.title("Predict")
st.markdown("Real ImageNet weights, each with its own preprocessing. Choose photos and networks; "
            "the first use of a checkpoint downloads it into the standard cache "
            "(torch.hub or Hugging Face).")

with st.sidebar:
    chosen = st.multiselect("Variants", list(VARIANTS), default=DEFAULT[:2], key="predict_variants",
                            bind="query-params")
    choices = {}
    for variant in chosen:
        tags = [s.tag for s in specs_for(variant)] + [UPLOAD]
        choices[variant] = st.selectbox(f"{variant} weights", tags, key=f"weights_{variant}",
                                        help="public weights (downloaded once), or your own file")
    cuda = torch.cuda.is_available()
    device = st.radio("Device", ("CPU", "GPU (cuda)"), key="predict_device", disabled=not cuda,
                      captions=("", "" if cuda else "no CUDA GPU on this server"))
    device = "cuda" if device != "CPU" and cuda else "cpu"

samples = sample_images()
left, right = st.columns([3, 2])
uploads = left.file_uploader(f"Photos ({SUPPORTED})", accept_multiple_files=True,
                             type=["jpg", "jpeg", "png", "webp", "gif", "tif", "tiff", "bmp"])
picked = right.pills("Or samples", list(samples), selection_mode="multi", default=["cat"],
                     key="samples", help="openly licensed photos; see assets/samples/CREDITS.md")

images, problems = [], []
for upload in uploads or []:
    try:
        images.append((upload.name, load_image(upload, name=upload.name)))
    except ImageError as err:
        problems.append(str(err))
for name in picked or []:
    images.append((name, load_image(samples[name])))
for problem in problems:
    st.error(problem, icon=":material/broken_image:")
if not chosen or not images:
    st.info("Choose at least one variant and one photo.")
    st.stop()


def ready_model(variant: str):
    """(loaded model, its weights) for the sidebar's choice, or None after showing what to do."""
    weights = choices[variant]
    if weights == UPLOAD:
        file = st.file_uploader(f"Checkpoint for {variant} (.pth, .pt, .safetensors)",
                                type=["pth", "pt", "safetensors", "bin"], key=f"ckpt_{variant}")
        if file is None:
            st.info(f"Upload a {variant} checkpoint in torchvision, timm, Cadene, facenet or "
                    "explorer layout; it is loaded without unpickling code.")
            return None
        try:
            weights = str(store_upload(file.getvalue(), file.name))
        except ValueError as err:
            st.error(str(err))
            return None
    try:
        return data.loaded_model(variant, weights, device, len(images)), weights
    except MemoryRefused as err:
        st.error(str(err), icon=":material/memory:")
    except DownloadError as err:
        st.warning(f"No {variant} weights here: {err}", icon=":material/cloud_off:")
    except (WeightsError, UnknownWeights, ConfigError) as err:
        st.error(f"These weights do not load into {variant}: {err}")
    return None


pictures = [img for _, img in images]
columns = st.columns(len(chosen))
loaded_models = {}
for col, variant in zip(columns, chosen):
    with col:
        st.subheader(variant)
        st.caption(f"{load_estimate(variant, len(images), device=device).needs()} to load and "
                   f"run {len(images)} photo(s)")
        ready = ready_model(variant)
        if ready is None:
            continue
        loaded, weights = ready
        start = time.perf_counter()
        loaded, tops, note = classify_or_fall_back(
            loaded, pictures, 5, lambda: data.loaded_model(variant, weights, "cpu"))
        ms = (time.perf_counter() - start) * 1000
        if note:
            st.warning(note, icon=":material/memory:")
        loaded_models[variant] = loaded
        st.caption(f"{loaded.weights} · {loaded.source} layout · {len(pictures)} image(s) in "
                   f"{ms:.0f} ms on {loaded.device.type.upper()}")
        for note in loaded.notes:
            st.caption(f"note: {note}")
        for i, ((name, _), top) in enumerate(zip(images, tops)):
            st.plotly_chart(charts.top_k_bars(top, title=name), key=f"top_{variant}_{i}")

if not loaded_models:
    st.stop()

st.header("What the network sees")
c1, c2 = st.columns(2)
variant = c1.selectbox("Network", list(loaded_models), key="see_variant")
picked_index = c2.selectbox("Photo", range(len(images)), format_func=lambda i: images[i][0],
                            key="see_image")
loaded = loaded_models[variant]
image = images[picked_index][1]
crop = preview(image, loaded.preprocess)
cam, maps = data.what_it_sees(loaded, image)

cam_col, maps_col = st.columns([2, 3])
with cam_col:
    label = loaded.labels[cam.class_index]
    st.image(overlay(crop, cam.heatmap), caption=f"Grad-CAM for '{label}' on the output of "
             f"{cam.block} ({cam.coarse.shape[0]}x{cam.coarse.shape[1]} grid), over the "
             f"{loaded.preprocess.input_size} px crop the network sees")
with maps_col:
    names = [m.name for m in maps]
    block = st.select_slider("Block", names, value=names[len(names) // 2], key=f"see_block_{variant}")
    m = maps[names.index(block)]
    st.image(channel_grid(m.maps, columns=8), clamp=True, width="stretch",
             caption=f"{block}: output {m.shape[0]} x {m.shape[1]} x {m.shape[2]}; the 16 "
                     "channels with the highest mean activation "
                     f"({', '.join(map(str, m.top_channels[:8]))}, ...), each scaled to its own range")
