"""The Predict page (AppTest) with checkpoints the tests make, served from a local weights folder
($INCEPTION_EXPLORER_WEIGHTS, as an offline classroom server would), and without weights."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer.images import sample_images
from explorer.inference import predict

APP = str(Path(__file__).resolve().parents[1] / "explorer" / "app.py")


def predict_page(variants, **env) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("../pages/predict.py")
    at.run()
    at.multiselect(key="predict_variants").set_value(variants)
    return at.run()


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
    assert len(images) == 2, "the Grad-CAM overlay and the feature-map grid"
    captions = " ".join(c.value for c in at.caption)
    assert "googlenet.IMAGENET1K_V1" in captions and "torchvision layout" in captions
    slider = at.select_slider(key="see_block_googlenet")
    assert slider.value.startswith("inception_4")
    slider.set_value("inception_3.inception_3a").run()
    assert not at.exception


def test_predict_page_without_weights_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("INCEPTION_EXPLORER_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr("explorer.download._reachable", lambda *a, **k: False)
    at = predict_page(["inception_v4"])
    assert not at.exception, [e.value for e in at.exception]
    warnings = " ".join(w.value for w in at.warning)
    assert "No inception_v4 weights here" in warnings
    assert "huggingface.co/timm/inception_v4.tf_in1k" in warnings and "upload" in warnings
