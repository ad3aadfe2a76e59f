"""The app: ``streamlit run explorer/app.py``. Navigation only; pages are in pages/."""

import pandas  # noqa: F401 -- imported once here, not lazily in one session's thread while
import streamlit as st  # plotly in another looks it up half-initialised (AttributeError)

from explorer.core.cost import freeze_imports
from explorer.ui.language import pick_language
from explorer.ui.nav import pages

st.set_page_config(page_title="Inception Explorer", page_icon=":material/hub:", layout="wide")
try:
    pick_language()  # before the titles: they are made in its language
    navigation = st.navigation(pages())
    navigation.run()
finally:  # after a run that imported modules: Streamlit's collection after each run stays cheap
    freeze_imports()
