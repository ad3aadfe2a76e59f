"""The app's two languages, Korean and English: gettext catalogs (kept with Babel) and
locale-aware numbers. No torch, no Streamlit.

Each browser tab is a thread of one server process, so nothing here is process-wide (never
``gettext.install``): one cached ``gettext.translation`` per language, and the language of the
run in progress kept in a context variable that the app sets at the start of every run
(``explorer.ui.language``). Code that runs outside a page (the CLI, tests) gets English.

Strings are marked for ``pybabel extract -F babel.cfg`` with ``_`` (translated where it is
called) and ``N_`` (marked only: a module-level constant, translated with ``_`` when shown).
Placeholders are named, ``_("{n} runs").format(n=...)``, so a translation may reorder them.
"""

from __future__ import annotations

import functools
import gettext
import re
import string
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from babel.numbers import format_decimal, format_percent

DOMAIN = "explorer"
LOCALEDIR = Path(__file__).resolve().parents[1] / "locale"  # explorer/locale
LANGUAGES = ("ko", "en")
DEFAULT = "en"
NAMES = {"ko": "한국어", "en": "English"}  # each language's name in itself
BABEL_LOCALES = {"ko": "ko_KR", "en": "en_US"}
# Fonts that draw Hangul (fontconfig and browsers take the first one they have): the graph's DOT
# and the Plotly charts name them, so Korean labels never fall back to empty boxes.
CJK_FONT = "Noto Sans CJK KR"
FONT_FAMILY = ("Noto Sans CJK KR, Noto Sans KR, Source Sans Pro, Apple SD Gothic Neo, "
               "Malgun Gothic, NanumGothic, sans-serif")

_current: ContextVar[str] = ContextVar("explorer_language", default=DEFAULT)


@functools.cache
def translation(lang: str) -> gettext.NullTranslations:
    """The catalog of ``lang`` (English: the source strings themselves), read once."""
    return gettext.translation(DOMAIN, LOCALEDIR, languages=[lang], fallback=True)


def parse_language(value: str | None) -> str | None:
    """A ``?lang=`` value: "ko" or "en" (any case, surrounding spaces ignored), else None."""
    text = (value or "").strip().lower()
    return text if text in LANGUAGES else None


def language_from_locale(locale: str | None) -> str:
    """The browser's locale ("ko-KR", "ko", "en-US", None): Korean for any ko*, else English."""
    return "ko" if (locale or "").strip().lower()[:2] == "ko" else "en"


def set_language(lang: str) -> None:
    """The language of the run in progress (this thread's context only)."""
    _current.set(lang if lang in LANGUAGES else DEFAULT)


def language() -> str:
    return _current.get()


@contextmanager
def speaking(lang: str):
    """Run a block in ``lang`` (work done later or elsewhere, e.g. a download made on click),
    then return to the language before."""
    token = _current.set(lang if lang in LANGUAGES else DEFAULT)
    try:
        yield
    finally:
        _current.reset(token)


def _(message: str) -> str:
    """``message`` in the language of the run in progress."""
    return translation(language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translation(language()).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Marks ``message`` for extraction without translating it (a module-level constant)."""
    return message


@functools.lru_cache(maxsize=256)
def _pattern(template: str) -> re.Pattern:
    """A regular expression that reads ``template``'s ``{fields}`` back out of its English."""
    out, seen = [], set()
    for literal, name, _spec, _conv in string.Formatter().parse(template):
        out.append(re.escape(literal))
        if name is not None:
            out.append(f"(?P={name})" if name in seen else f"(?P<{name}>.+?)")
            seen.add(name)
    return re.compile("".join(out), re.S)


def again(text: str, *templates: str) -> str:
    """English ``text`` made by one of ``templates`` (each marked with ``N_``, formatted with
    named fields; a field's value may be made by one of them too), said in the run's language;
    any other text through the catalog as it is. For messages kept in a cache that every session
    shares (a loaded model's notes, an analysis), so made once in English: each page says them
    in its own language when it shows them."""
    said = _again(text, templates)
    if said is not None:
        return said
    return _(text) if text else text


def _again(text: str, templates: tuple[str, ...]) -> str | None:
    for template in templates:
        found = _pattern(template).fullmatch(text)
        if found:
            values = {k: v if (inner := _again(v, templates)) is None else inner
                      for k, v in found.groupdict().items()}
            return _(template).format(**values)
    return None


def number(value: float, digits: int | None = None) -> str:
    """``value`` with the language's grouping and decimal signs; ``digits``: fixed decimals."""
    if digits is None:
        return format_decimal(value, locale=BABEL_LOCALES[language()])
    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
    return format_decimal(value, format=pattern, locale=BABEL_LOCALES[language()])


def percent(fraction: float, digits: int = 1) -> str:
    """A fraction as a percentage in the language's way: 0.283 -> "28.3%"."""
    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "") + "%"
    return format_percent(fraction, format=pattern, locale=BABEL_LOCALES[language()])
