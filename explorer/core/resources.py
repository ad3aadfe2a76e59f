"""Where the app's pages and assets are: inside the package once installed from a wheel
(``explorer/pages``, ``explorer/assets``: pyproject maps the top-level folders there), at the
top of a source checkout otherwise (``pages/``, ``assets/``), so ``streamlit run
explorer/app.py`` and ``inception-explorer app`` read the same files."""

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]  # explorer/


def resource(name: str) -> Path:
    inside = PACKAGE / name
    return inside if inside.is_dir() else PACKAGE.parent / name
