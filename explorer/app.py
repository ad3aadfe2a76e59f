"""The Streamlit app: ``streamlit run explorer/app.py``. Navigation only; pages are in pages/."""

import streamlit as st

from explorer.ui.nav import pages

st.set_page_config(page_title="Inception Explorer", page_icon=":material/hub:", layout="wide")
st.navigation(pages()).run()
