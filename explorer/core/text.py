"""Text shown to people: tensor shapes, and user-given text (file names) in Streamlit's markdown,
taken literally, never as markup. No torch, no Streamlit."""

import re

# CommonMark lets a backslash escape any ASCII punctuation; ':' and '$' are Streamlit's own
# markup (":red[...]", ":material/icon:", LaTeX).
_MARKUP = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")


def md_escape(text: str) -> str:
    return _MARKUP.sub(r"\\\1", str(text))


def shape_text(shape, sep: str = " x ") -> str:
    """A shape as people read it: "768 x 17 x 17" (``sep="x"``: "768x17x17", as CSV cells)."""
    return sep.join(map(str, shape))
