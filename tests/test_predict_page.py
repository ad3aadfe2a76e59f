"""The Predict page (AppTest) with checkpoints the tests make, served from a local weights folder
($INCEPTION_EXPLORER_WEIGHTS, as an offline classroom server would), and without weights."""

import re
import urllib.error

import pytest
from apptest_helpers import predict_page  # tests/ on sys.path
from streamlit.testing.v1 import AppTest

from explorer.core.images import sample_images
from explorer.runtime.inference import predict

UPLOAD = "a checkpoint file..."


def test_predict_page_shows_top5_gradcam_and_feature_maps(weights_dir, monkeypatch):
    monkeypatch.setenv("INCEPTION_EXPLORER_WEIGHTS", str(weights_dir))
    at = predict_page(["googlenet"])
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    charts = at.get("plotly_chart")
    assert len(charts) == 1, "one top-5 chart: one photo (the cat sample) x one variant"
    with pytest.warns(UserWarning):
        expected = predict([sample_images()["cat"]], "googlenet",
                           weights_dir / "googlenet.IMAGENET1K_V1.pth")[0]["top"][0]["label"]
    assert expected in charts[0].proto.spec
    images = at.get("image")
    assert len(images) == 3, "the crop googlenet sees, the Grad-CAM overlay, the feature maps"
    captions = " ".join(c.value for c in at.caption)
    assert "googlenet.IMAGENET1K_V1" in captions and "torchvision checkpoint" in captions
    slider = at.select_slider(key="see_block_googlenet")
    assert slider.value.startswith("inception_4")
    slider.set_value("inception_3.inception_3a").run()
    assert not at.exception


def test_predict_page_without_weights_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("INCEPTION_EXPLORER_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr("explorer.weights.download._reachable", lambda *a, **k: False)
    # googlenet's download fails as it does offline: a socket error from urllib
    monkeypatch.setattr("urllib.request.urlopen", offline_urlopen)
    # ... in the worker process that tries it too: a proxy that refuses every connection, and
    # huggingface_hub told it is offline (read at import: the worker is a fresh one)
    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    at = predict_page(["googlenet", "inception_v4", "inception_v2"])
    assert not at.exception, [e.value for e in at.exception]
    messages = [m.value for m in [*at.warning, *at.info, *at.error]]
    per_network = {v: [m for m in messages if v in m] for v in ("googlenet", "inception_v4", "inception_v2")}
    assert per_network["googlenet"] == [
        "The **IMAGENET1K_V1** weights are not on this server and cannot be downloaded from here. "
        "Where there is internet, run `python -m explorer weights fetch googlenet.IMAGENET1K_V1 "
        "--to DIR`, then start the app here with `INCEPTION_EXPLORER_WEIGHTS=DIR`."]
    (v4,) = per_network["inception_v4"]
    assert "inception_v4.tf_in1k --to DIR" in v4
    assert per_network["inception_v2"] == [
        "inception_v2 has no public ImageNet weights: upload a checkpoint (.pth, .pt or "
        ".safetensors) in the sidebar's **Checkpoint for inception_v2**."]
    text = " ".join(messages)
    assert "Errno" not in text and "http" not in text and "Name or service" not in text
    # the photo, as each network sees it, is shown anyway: 224 px for GoogLeNet, 299 for the others
    crops = [img for img in at.get("image")]
    assert len(crops) == 3
    captions = " ".join(c.value for c in at.caption)
    assert "the 224 px crop googlenet sees" in captions and "the 299 px crop inception_v4 sees" in captions
    assert any("Grad-CAM and the feature maps" in i.value for i in at.info)
    assert "Checkpoint for inception_v2" in [u.label for u in at.file_uploader]


def plain(markdown: str) -> str:
    """Text as rendered: markdown's backslash escapes removed."""
    return re.sub(r"\\(.)", r"\1", markdown)


def offline_urlopen(*args, **kwargs):
    raise urllib.error.URLError(OSError(-2, "Name or service not known"))


@pytest.fixture
def googlenet_checkpoint(reference_zoo):
    return reference_zoo["torchvision_googlenet"].path.read_bytes()


def upload_page(monkeypatch, tmp_path, weights_dir) -> AppTest:
    """Predict with googlenet's weights uploaded (the first run predicts with the page's default
    tags, read from the tests' weights folder: nothing is downloaded)."""
    monkeypatch.setenv("INCEPTION_EXPLORER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("INCEPTION_EXPLORER_WEIGHTS", str(weights_dir))
    at = predict_page(["googlenet"])
    at.selectbox(key="weights_googlenet").set_value(UPLOAD)
    return at.run()


def test_the_checkpoint_shown_is_the_checkpoint_used(googlenet_checkpoint, monkeypatch, tmp_path,
                                                     weights_dir):
    at = upload_page(monkeypatch, tmp_path, weights_dir)
    at.file_uploader(key="ckpt_googlenet").set_value(("my googlenet.pth", googlenet_checkpoint,
                                                      "application/octet-stream")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(c.value.startswith("my googlenet\\.pth · torchvision checkpoint") for c in at.caption)
    # no photo: the page stops early, yet the checkpoint uploader is still drawn (an uploader
    # left out of a run loses its file in the browser while the server would keep using it)
    at.pills(key="samples").set_value([]).run()
    assert [i.value for i in at.info] == ["Choose at least one variant and one photo."]
    assert [u.key for u in at.file_uploader if u.key] == ["ckpt_googlenet"]
    at.pills(key="samples").set_value(["cat"]).run()
    assert any(c.value.startswith("my googlenet\\.pth") for c in at.caption)
    # cleared in the uploader: cleared in use
    at.file_uploader(key="ckpt_googlenet").set_value(None).run()
    assert not any("torchvision checkpoint" in c.value for c in at.caption)
    assert any("**Checkpoint for googlenet**" in i.value for i in at.info)


def test_upload_errors_name_the_file_as_the_user_did(monkeypatch, tmp_path, weights_dir):
    at = upload_page(monkeypatch, tmp_path, weights_dir)
    at.file_uploader(key="ckpt_googlenet").set_value(("broken.pth", b"\x80\x02]q\x00" * 5,
                                                      "application/octet-stream")).run()
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert plain(error).startswith("broken.pth does not load into googlenet: broken.pth is not a "
                                   "readable PyTorch checkpoint: it is truncated, or not a checkpoint")
    assert "pop from" not in error and "uploads" not in error
    hostile = "<img src=x onerror=alert(1)>.pth"
    at.file_uploader(key="ckpt_googlenet").set_value((hostile, b"junk", "application/octet-stream")).run()
    (error,) = [e.value for e in at.error]
    assert "<img" not in error.replace("\\<img", "") and "\\<img src=x onerror=alert\\(1\\)\\>\\.pth" in error


def test_the_same_photo_uploaded_twice_is_kept_once(weights_dir, monkeypatch):
    monkeypatch.setenv("INCEPTION_EXPLORER_WEIGHTS", str(weights_dir))
    at = predict_page(["googlenet"])
    photo = sample_images()["coffee"].read_bytes()
    at.file_uploader[0].set_value([("coffee.jpg", photo, "image/jpeg"), ("copy.jpg", photo, "image/jpeg")])
    at.pills(key="samples").set_value([]).run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 1
    assert "copy\\.jpg is the same photo as coffee\\.jpg: shown once." in [c.value for c in at.caption]
    at.pills(key="samples").set_value(["coffee", "cat"]).run()  # a sample that was uploaded too
    assert len(at.get("plotly_chart")) == 2


def test_loading_an_upload_names_the_file_not_a_server_path(googlenet_checkpoint, monkeypatch, tmp_path,
                                                           weights_dir):
    import streamlit

    texts, real = [], streamlit.progress
    monkeypatch.setattr(streamlit, "progress",
                        lambda value, text=None: texts.append(text) or real(value, text))
    at = upload_page(monkeypatch, tmp_path, weights_dir)
    texts.clear()  # the default tags' loads, where no worker held them yet
    at.file_uploader(key="ckpt_googlenet").set_value(("mine.safetensors.pth", googlenet_checkpoint,
                                                      "application/octet-stream")).run()
    assert not at.exception
    assert texts == ["Loading the googlenet weights (mine\\.safetensors\\.pth)..."]


def test_uploads_keep_the_users_name_inside_a_folder_of_their_content(tmp_path, monkeypatch):
    from explorer.weights.checkpoints import store_upload, upload_dir
    monkeypatch.setenv("INCEPTION_EXPLORER_CACHE", str(tmp_path))
    first = store_upload(b"weights", "../../my model.pth")
    assert first.name == "my model.pth" and first.read_bytes() == b"weights"
    assert first.parent.parent == upload_dir(), "never a folder of the user's choosing"
    assert store_upload(b"weights", "my model.pth") == first
    assert store_upload(b"other", "my model.pth") != first
    assert store_upload(b"w", "C:\\Users\\me\\v3.safetensors").name == "v3.safetensors"
    long = store_upload(b"w", "x" * 300 + ".pt")
    assert long.name.endswith(".pt") and len(long.name) < 200
    with pytest.raises(ValueError, match="notes.txt is not a checkpoint file"):
        store_upload(b"w", "notes.txt")
