"""The app's pages, for ``st.navigation`` and for links between pages."""

from __future__ import annotations

import streamlit as st

from explorer.core.i18n import N_, _
from explorer.core.resources import resource

PAGES_DIR = resource("pages")

# name -> (title, icon); the first is the default page. Titles are translated at each run
# (``page``): st.navigation is given strings made in the run's language.
PAGES = {
    "overview": (N_("Overview"), ":material/home:"),
    "inspect": (N_("Inspect"), ":material/account_tree:"),
    "design": (N_("Design"), ":material/architecture:"),
    "compare": (N_("Compare"), ":material/compare_arrows:"),
    "predict": (N_("Predict"), ":material/image_search:"),
    "learn": (N_("Learn"), ":material/school:"),
    "lab": (N_("Lab"), ":material/science:"),
}


def page(name: str) -> st.Page:
    title, icon = PAGES[name]
    return st.Page(PAGES_DIR / f"{name}.py", title=_(title), icon=icon, url_path=name,
                   default=name == "overview")


def pages() -> list[st.Page]:
    return [page(name) for name in PAGES]
