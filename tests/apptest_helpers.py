"""Helpers for the AppTest page tests (streamlit.testing), shared by the test modules."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "explorer" / "app.py")
TIMEOUT = 120  # model builds and meta forwards take seconds (AppTest's default is 3)


def app(page: str | None = None, *, timeout: float = TIMEOUT, **query) -> AppTest:
    """The app run once on ``page`` (None: the first page) with ``query`` in its URL."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.query_params.update(query)
    if page:
        at.switch_page(f"../pages/{page}.py")
    return at.run()


def predict_page(variants: list[str]) -> AppTest:
    """The Predict page with ``variants`` chosen (the first run picks its defaults), as a fresh
    server shows it: no answers kept from other tests' pages (they would be shown again without
    asking a worker)."""
    from explorer.ui import answers
    answers._predictions.clear()
    answers._seen.clear()
    at = app("predict")
    at.multiselect(key="predict_variants").set_value(variants)
    return at.run()


def clean(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)
