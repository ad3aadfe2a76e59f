"""User-given text (file names) shown in Streamlit's markdown: taken literally, never as markup."""

import re

# CommonMark lets a backslash escape any ASCII punctuation; ':' and '$' are Streamlit's own
# markup (":red[...]", ":material/icon:", LaTeX).
_MARKUP = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")


def md_escape(text: str) -> str:
    return _MARKUP.sub(r"\\\1", str(text))
