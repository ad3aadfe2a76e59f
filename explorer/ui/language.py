"""Which language this run speaks, and the sidebar's switch between Korean and English.

The choice, strongest first: the link's ``?lang=ko|en``, then the sidebar switch (kept in
session state, so it outlives page changes), then the browser's ``st.context.locale`` (ko* ->
Korean, else English). Once chosen (by link or switch) the language is written back to the URL,
so a copied link opens in it. The pages' widgets are keyed, so a label that changes language
keeps its widget's value: switching keeps the page as it was.
"""

from __future__ import annotations

import streamlit as st

from explorer.core.i18n import (
    DEFAULT,
    LANGUAGES,
    NAMES,
    _,
    language_from_locale,
    parse_language,
    set_language,
    speaking,
)
from explorer.core.text import md_escape

KEY = "lang"            # the sidebar switch's key, and the query parameter
CHOSEN = "_lang_chosen"  # set once the link or the switch chose: the URL then carries it
REFUSED = "_lang_refused"  # a ``?lang=`` value that is no language of the app (for the note)


def _switched() -> None:
    st.session_state[CHOSEN] = True
    if st.session_state.get(KEY) is None:  # a segmented control can be clicked off
        st.session_state[KEY] = st.query_params.get(KEY) or language_from_locale(_locale())
    st.query_params[KEY] = st.session_state[KEY]


def _locale() -> str | None:
    try:
        return st.context.locale
    except Exception:  # AppTest and bare script runs have no browser to ask
        return None


def pick_language() -> str:
    """Decide this run's language, set it for ``explorer.core.i18n._`` and draw the switch."""
    asked = st.query_params.get_all(KEY)
    if asked:
        lang = parse_language(asked[-1])
        if lang is None:
            st.session_state[REFUSED] = asked[-1]
            del st.query_params[KEY]  # the note says so; the link no longer carries it
        elif st.session_state.get(KEY) != lang:
            st.session_state[KEY] = lang
            st.session_state[CHOSEN] = True
    if st.session_state.get(KEY) not in LANGUAGES:
        st.session_state[KEY] = language_from_locale(_locale())
    lang = st.session_state[KEY]
    set_language(lang)
    if st.session_state.get(CHOSEN) and st.query_params.get(KEY) != lang:
        st.query_params[KEY] = lang  # a page change cleared the URL: links carry the language
    st.sidebar.segmented_control("언어 · Language", LANGUAGES, key=KEY, format_func=NAMES.get,
                                 on_change=_switched, label_visibility="collapsed")
    refused = st.session_state.pop(REFUSED, None)
    if refused is not None:
        shown = md_escape(refused if len(refused) <= 40 else refused[:40] + "...")
        st.info(_("The link asks for the language \"{value}\", which this app does not have "
                  "(ko: 한국어, en: English): it shows {language}. Use the switch in the "
                  "sidebar to change it.").format(value=shown, language=NAMES[lang]),
                icon=":material/translate:")
    return lang


def session_language():
    """``with session_language():`` speak this session's language where ``pick_language`` has not
    run in this thread: a widget's callback or a fragment's rerun (Streamlit runs them before the
    page, often in a thread of their own, which starts in English)."""
    return speaking(st.session_state.get(KEY) or DEFAULT)


def query_with_language(query: dict[str, str]) -> dict[str, str]:
    """A link's query parameters, with the language when one was chosen (by link or switch)."""
    if st.session_state.get(CHOSEN) and st.session_state.get(KEY) in LANGUAGES:
        return {**query, KEY: st.session_state[KEY]}
    return query


def expander(label: str, *, key: str, **kwargs):
    """``st.expander`` that stays open when its label changes language. Streamlit names an
    expander by its label as well as its key, so a translated label is a new expander that
    would start closed: it starts as the last one was left."""
    remembered = f"_expanded:{key}"
    box = st.expander(label, key=key, expanded=st.session_state.get(remembered, False),
                      on_change="rerun", **kwargs)
    st.session_state[remembered] = bool(box.open)
    return box
