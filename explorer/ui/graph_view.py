"""The explorer's graph as a Streamlit component (Custom Components v2, no iframe), and the
selection / expansion state the pages keep in session state and in the URL (``block=``,
``open=``).

The component shows Graphviz's SVG inline and reports what the user does: ``click`` (a node or
a stage / block box: its qualified name), ``toggle`` (a double-click: expand or collapse) and
``command`` ("expand_all", "collapse_all"). Pan, zoom, fit and search happen in the browser.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from explorer.analysis.graph import unknown_names
from explorer.core.i18n import DEFAULT, N_, _, language

HERE = Path(__file__).resolve().parent
# a link's names the view ignores (kept in session state: shown with again(note, *NOTES))
IGNORED_OPEN = N_("ignored in open=: {names}")
IGNORED_BLOCK = N_("ignored in block=: {block}")
NOTES = (IGNORED_OPEN, IGNORED_BLOCK)
HTML = """<div data-explorer-graph>
  <div class="toolbar">
    <input class="search" type="search" aria-label="search the graph"
           placeholder="search: reduction, mixed_6, 1x7">
    <span class="count"></span>
    <button class="fit" type="button" title="show the whole graph">fit</button>
    <button class="zoom-in" type="button" title="zoom in (or the mouse wheel)">+</button>
    <button class="zoom-out" type="button" title="zoom out">&minus;</button>
    <button class="expand-all" type="button" title="open every stage and block">expand all</button>
    <button class="collapse-all" type="button" title="back to one node per stage">collapse all</button>
  </div>
  <div class="canvas"
       aria-label="click: select · double-click: expand / collapse · wheel: zoom · drag: pan"></div>
  <div class="tip" data-explorer-tip hidden></div>
  <div class="legend" data-explorer-legend hidden></div>
</div>"""


def toolbar_words() -> list[list[str]]:
    """The toolbar's words in the run's language: [selector, attribute or "text", words]."""
    return [
        ["input.search", "aria-label", _("search the graph")],
        ["input.search", "placeholder", _("search: reduction, mixed_6, 1x7")],
        ["button.fit", "title", _("show the whole graph")],
        ["button.fit", "text", _("fit")],
        ["button.zoom-in", "title", _("zoom in (or the mouse wheel)")],
        ["button.zoom-out", "title", _("zoom out")],
        ["button.expand-all", "title", _("open every stage and block")],
        ["button.expand-all", "text", _("expand all")],
        ["button.collapse-all", "title", _("back to one node per stage")],
        ["button.collapse-all", "text", _("collapse all")],
        [".canvas", "aria-label", _("click: select · double-click: expand / collapse · wheel: zoom · "
                               "drag: pan")],
    ]


_component = st.components.v2.component(
    "inception_explorer_graph", html=HTML, css=(HERE / "graph_view.css").read_text(),
    js=(HERE / "graph_view.js").read_text(), isolate_styles=False)


def drawing_id(svg: str) -> str:
    return hashlib.sha1(svg.encode()).hexdigest()[:16]


def graph_view(svg: str, *, key: str, selected: str | None = None, highlight: Iterable[str] = (),
               legend: Iterable[tuple[str, str]] = (), legend_title: str = "",
               focus: str | None = None, height: int = 620, fit: str = "readable",
               on_click: Callable[[str], None] | None = None,
               on_toggle: Callable[[str], None] | None = None,
               on_command: Callable[[str], None] | None = None) -> None:
    """Mount the graph. The handlers run before the next script run (Streamlit callbacks), so
    the run that follows a click already draws and lays out the new state. A new drawing
    first shows readable text ("readable") or all of it ("all")."""

    def handler(event, fn):
        def run():
            value = (st.session_state.get(key) or {}).get(event)
            if fn is not None and isinstance(value, str):
                fn(value)
        return run

    _component(key=key, height="content", data={
        "svg": svg, "drawing": drawing_id(svg), "instance": key, "selected": selected or "",
        "highlight": list(highlight), "legend": [list(x) for x in legend],
        "legend_title": legend_title, "focus": focus or "", "height": int(height),
        "fit": fit, "toolbar": toolbar_words(),
        # English keeps the script's own plural; another language gives its words
        "words": {} if language() == DEFAULT else {"matches": _("{n} match(es)")}},
        on_click_change=handler("click", on_click), on_toggle_change=handler("toggle", on_toggle),
        on_command_change=handler("command", on_command))


@dataclass
class GraphState:
    """The selected node and the expanded set of one graph (per variant), in session state;
    the first time in a session they come from the URL, with a note for unknown names."""

    prefix: str
    variant: str
    known: set[str]                  # every name that may be selected
    expandable: dict[str, str]       # name -> "stage" / "block" / "head"
    url: bool = True                 # mirror into ?block=&open=
    default_open: tuple = ()         # expanded at first (without a link saying otherwise)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self):
        base = f"{self.prefix}:{self.variant}"
        self.k_open, self.k_sel, self.k_focus = f"{base}:open", f"{base}:block", f"{base}:focus"
        if self.k_open in st.session_state:  # a link's notes stay until the view changes
            self.notes = st.session_state.get(f"{base}:notes", [])
            if st.session_state[self.k_sel] not in self.known:  # another config: gone
                st.session_state[self.k_sel] = None
        else:
            block, opened = None, set(self.default_open) & set(self.expandable)
            # a link speaks for the variant the session opened with; another variant chosen
            # later starts afresh (the URL still holds the previous one's names until synced)
            first = f"{self.prefix}:link_read" not in st.session_state
            st.session_state[f"{self.prefix}:link_read"] = True
            if self.url and first and ("block" in st.query_params or "open" in st.query_params):
                block = st.query_params.get("block") or None
                raw = [n.strip() for n in (st.query_params.get("open") or "").split(",")]
                raw = [n for n in raw if n]
                bad = unknown_names(raw, self.expandable)
                if bad:
                    self.notes.append(IGNORED_OPEN.format(names=", ".join(bad)))
                opened = {n for n in raw if n in self.expandable}
                if block is not None and block not in self.known:
                    self.notes.append(IGNORED_BLOCK.format(block=block))
                    block = None
            st.session_state[self.k_open] = opened
            st.session_state[self.k_sel] = block
            st.session_state[self.k_focus] = None
            st.session_state[f"{base}:notes"] = self.notes

    def _changed(self) -> None:
        st.session_state[f"{self.prefix}:{self.variant}:notes"] = []

    @property
    def expanded(self) -> set[str]:
        return st.session_state[self.k_open]

    @property
    def selected(self) -> str | None:
        return st.session_state[self.k_sel]

    @property
    def focus(self) -> str | None:
        return st.session_state[self.k_focus]

    def select(self, name: str | None) -> None:
        if name is None or name in self.known:
            st.session_state[self.k_sel] = name
            self._changed()

    def reveal(self, name: str) -> None:
        """Select ``name`` and open what holds it, so that its node shows (a table row)."""
        self.select(name)
        parts = name.split(".")
        holders = {".".join(parts[:i]) for i in range(1, len(parts))} & set(self.expandable)
        if holders - self.expanded:
            st.session_state[self.k_open] = self.expanded | holders
            st.session_state[self.k_focus] = name

    def toggle(self, name: str) -> None:
        """Expand or collapse ``name`` (a double-click, whose clicks have selected it)."""
        if name not in self.expandable:
            return
        opened = set(self.expanded)
        opened.symmetric_difference_update({name})
        st.session_state[self.k_open] = opened
        st.session_state[self.k_focus] = name

    def command(self, what: str) -> None:
        if what in ("expand_all", "collapse_all"):
            self._changed()
            st.session_state[self.k_open] = set(self.expandable) if what == "expand_all" else set()
            st.session_state[self.k_focus] = None

    def sync_url(self) -> None:
        """Write the state into the URL, so that a link reopens the same view."""
        if not self.url:
            return
        block = self.selected
        opened = ",".join(n for n in self.expandable if n in self.expanded)  # model order
        for name, value in (("block", block), ("open", opened)):
            if value:
                if st.query_params.get(name) != value:
                    st.query_params[name] = value
            elif name in st.query_params:
                del st.query_params[name]

    def show(self, svg: str, *, key: str, **kwargs) -> None:
        graph_view(svg, key=key, selected=self.selected, focus=self.focus,
                   on_click=self.select, on_toggle=self.toggle, on_command=self.command, **kwargs)
