"""Streamlit widgets and cached computations shared by the pages in ``pages/``.

With the page scripts, this is the only code that imports streamlit; the logic it lays out lives
in ``explorer`` (analysis, graph, charts, lessons, timing).
"""
