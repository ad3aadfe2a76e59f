"""Korean and English: the catalogs (every user-facing string translated, placeholders alike, the
compiled .mo up to date), the language's choice and isolation, numbers, Korean drawn with real
glyphs by Graphviz, and every page at ``?lang=ko`` (AppTest)."""

from __future__ import annotations

import io
import re
import string
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from apptest_helpers import app, clean
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from explorer.core import i18n
from explorer.core.i18n import _, language_from_locale, parse_language, set_language, speaking

ROOT = Path(__file__).resolve().parents[1]
LOCALE = ROOT / "explorer" / "locale"
PO = LOCALE / "ko" / "LC_MESSAGES" / "explorer.po"
MO = LOCALE / "ko" / "LC_MESSAGES" / "explorer.mo"
HANGUL = re.compile("[\uac00-\ud7a3]")
HOSTILE = "<img src=x onerror=alert(1)>"


def fields(text: str) -> list[str]:
    """The ``str.format`` fields of ``text``, sorted (a translation may reorder them)."""
    return sorted(name for _lit, name, _spec, _conv in string.Formatter().parse(text)
                  if name is not None)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> dict:
    """What ``pybabel extract`` finds in the code now (not the committed .pot)."""
    pot = tmp_path_factory.mktemp("catalog") / "explorer.pot"
    subprocess.run([sys.executable, "-c", "import sys; from babel.messages.frontend import main; "
                    "sys.argv[0] = 'pybabel'; main()", "extract", "-F",
                    "babel.cfg", "-k", "N_", "-k", "ngettext:1,2", "--no-location", "-o", str(pot),
                    "."], cwd=ROOT, check=True, capture_output=True, timeout=300)
    with open(pot, "rb") as f:
        return {m.id: m for m in read_po(f) if m.id}


@pytest.fixture(scope="module")
def korean():
    with open(PO, "rb") as f:
        return read_po(f)


def test_extraction_finds_the_pages_strings(extracted):
    # the extractor really reads the pages, the widgets and the charts
    for text in ("Overview", "Inspect", "Time every block on the CPU (builds the model: a few seconds)",
                 "Feature maps, block by block", "2. A training race", "Colour by"):
        assert text in extracted


def test_every_user_facing_string_is_translated_into_korean(extracted, korean):
    missing = [m for m in extracted if m not in korean]
    assert not missing, f"not in the Korean catalog (bash scripts/translations.sh update): {missing}"
    untranslated = [m for m in extracted if not korean[m].string]
    assert not untranslated, f"untranslated: {untranslated}"
    fuzzy = [m for m in extracted if korean[m].fuzzy]
    assert not fuzzy, f"fuzzy (check and clear the flag): {fuzzy}"
    # Korean text, not the English copied over (names such as "Lab" aside, few strings are kept)
    kept = [m for m in extracted if korean[m].string == m and HANGUL.search(m) is None
            and not re.fullmatch(r"[\w .:/%{}()@-]*", m)]
    assert len(kept) <= 3, f"copied, not translated: {kept}"


def test_placeholders_are_the_same_in_both_languages(extracted, korean):
    differ = {m: (fields(m), fields(korean[m].string)) for m in extracted
              if m in korean and fields(m) != fields(korean[m].string)}
    assert not differ, differ
    # and Babel's own checks (python-format and the like) find nothing
    problems = [(m.id, [str(e) for e in errors]) for m, errors in korean.check()]
    assert not problems, problems


def test_the_committed_template_lists_what_the_code_marks(extracted):
    with open(LOCALE / "explorer.pot", "rb") as f:
        committed = {m.id for m in read_po(f) if m.id}
    assert committed == set(extracted), ("run bash scripts/translations.sh update",
                                         set(extracted) ^ committed)


def test_the_compiled_catalog_says_what_the_po_says(korean):
    with open(MO, "rb") as f:
        compiled = {m.id: m.string for m in read_mo(f) if m.id}
    expected = {m.id: m.string for m in korean if m.id and m.string and not m.fuzzy}
    assert compiled == expected, "run bash scripts/translations.sh compile"


def test_the_notes_pages_repeat_are_the_analysis_own():
    from explorer.analysis import rows
    from explorer.ui import words
    assert words.MACS_NOTE == rows.MACS_NOTE and words.PARAMS_NOTE == rows.PARAMS_NOTE


def test_the_glossary_the_app_uses_is_kept_in_docs():
    glossary = (ROOT / "docs" / "glossary-ko.md").read_text()
    with open(PO, "rb") as f:
        strings = " ".join(m.string for m in read_po(f) if m.id)
    # the glossary's terms, as the catalog uses them
    for term in ("합성곱", "잔여 연결 (residual connection)", "보조 분류기 (auxiliary classifier)",
                 "매개 변수", "레이블 스무딩 (label smoothing)", "그리드 크기 축소 (grid size reduction)",
                 "표현 병목 (representational bottleneck)", "분해 (factorization)"):
        assert term in glossary and term in strings, term


# -- choosing the language -------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("ko", "ko"), ("en", "en"), (" KO ", "ko"), ("EN", "en"), ("ko-KR", None), ("fr", None),
    ("", None), (None, None), (HOSTILE, None), ("ko\n<script>", None), ("../../etc/passwd", None)])
def test_a_link_language_is_ko_or_en_only(value, expected):
    assert parse_language(value) == expected


@pytest.mark.parametrize(("locale", "expected"), [
    ("ko-KR", "ko"), ("ko", "ko"), ("KO_kr", "ko"), ("en-US", "en"), ("de-DE", "en"), ("", "en"),
    (None, "en"), ("kok", "ko")])
def test_the_browser_locale_picks_korean_for_ko(locale, expected):
    assert language_from_locale(locale) == expected


def test_each_thread_speaks_its_own_language():
    # Streamlit runs each session's script in a thread of one process: a language set in one
    # run must never leak into another (gettext.install would)
    seen, ready = {}, threading.Barrier(2)

    def run(lang):
        set_language(lang)
        ready.wait()  # both have set theirs before either reads
        seen[lang] = (i18n.language(), _("Overview"))

    threads = [threading.Thread(target=run, args=(lang,)) for lang in ("ko", "en")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"ko": ("ko", "개요"), "en": ("en", "Overview")}
    assert i18n.language() == "en"  # this thread never chose: English


def test_speaking_sets_and_restores_the_language():
    with speaking("ko"):
        assert _("Compare") == "비교"
        with speaking("fr"):  # not a language of the app: English
            assert _("Compare") == "Compare"
        assert _("Compare") == "비교"
    assert _("Compare") == "Compare"


def test_one_translation_object_per_language():
    assert i18n.translation("ko") is i18n.translation("ko")
    assert i18n.translation("ko").gettext("Learn") == "배우기"
    assert i18n.translation("en").gettext("Learn") == "Learn"


def test_numbers_are_formatted_for_the_language():
    with speaking("ko"):
        assert i18n.number(1234567) == "1,234,567" and i18n.number(0.5, 2) == "0.50"
        assert i18n.percent(0.2834) == "28.3%"
    with speaking("en"):
        assert i18n.number(23834568) == "23,834,568" and i18n.number(12.345, 1) == "12.3"


def test_navigation_titles_are_made_in_the_run_language(monkeypatch):
    from explorer.ui import nav
    monkeypatch.setattr(nav.st, "Page", lambda *args, **kwargs: kwargs)  # what st.Page is given
    with speaking("ko"):
        ko = [nav.page(name)["title"] for name in nav.PAGES]
    with speaking("en"):
        en = [nav.page(name)["title"] for name in nav.PAGES]
    assert ko == ["개요", "살펴보기", "설계", "비교", "예측", "배우기", "실험"]
    assert en == ["Overview", "Inspect", "Design", "Compare", "Predict", "Learn", "Lab"]


# -- Korean drawn with real glyphs -----------------------------------------------------------

def dot_png(label: str, env: dict | None = None) -> bytes:
    """``label`` drawn by Graphviz's dot with the graph's own font."""
    source = (f'digraph {{ node [shape=plaintext, fontname="{i18n.CJK_FONT}", fontsize=28]; '
              f'a [label="{label}"]; }}')
    return subprocess.run(["dot", "-Tpng"], input=source.encode(), capture_output=True,
                          check=True, timeout=60, env=env).stdout


def ink(png: bytes):
    """The drawing's dark pixels, cropped to their bounding box (a black-and-white image)."""
    from PIL import Image, ImageOps
    image = ImageOps.invert(Image.open(io.BytesIO(png)).convert("L")).point(lambda p: 255 * (p > 64))
    return image.crop(image.getbbox())


def framed(png: bytes) -> float:
    """How much of the ink's bounding box edge is inked: about 1 for the missing-glyph box
    (Pango draws a framed box with the code point's hex digits), well below for a real glyph."""
    image = ink(png)
    w, h, px = *image.size, image.load()
    edge = [px[x, y] for x in range(w) for y in (0, h - 1)] + \
        [px[x, y] for y in range(h) for x in (0, w - 1)]
    return sum(p > 0 for p in edge) / len(edge)


GLYPHS = "합성곱분해잔여연결"


def test_graphviz_draws_korean_with_real_glyphs():
    # U+0378 is unassigned: no font has it, so it is drawn as the missing-glyph box
    assert framed(dot_png("\u0378")) > 0.9 and framed(dot_png("\ue000")) > 0.9
    for glyph in GLYPHS:
        assert framed(dot_png(glyph)) < 0.7, f"{glyph} is drawn as a missing-glyph box"
    first, second = ink(dot_png("합성곱 분해")), ink(dot_png("잔여 연결망"))
    assert first.tobytes() != second.tobytes()  # two Korean strings drawn differently


def test_the_box_check_sees_boxes_where_no_font_has_hangul(tmp_path):
    # the same check, with fontconfig shown only a Latin font: every Korean glyph is a box,
    # so the test above would fail on a machine without fonts-noto-cjk
    conf = tmp_path / "fonts.conf"
    conf.write_text('<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
                    "<dir>/usr/share/fonts/truetype/dejavu</dir>"
                    f"<cachedir>{tmp_path / 'cache'}</cachedir></fontconfig>")
    env = {"FONTCONFIG_FILE": str(conf), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    assert all(framed(dot_png(glyph, env)) > 0.9 for glyph in GLYPHS[:3])


def test_the_graph_dot_names_the_cjk_font_and_speaks_korean():
    from explorer.analysis.graph import render, to_dot
    with speaking("ko"):
        source = to_dot("googlenet", depth="stage", overlay="macs",
                        values={"stem": 1.0, "inception_3": 5.0, "head": 2.0})
    assert f'fontname="{i18n.CJK_FONT}"' in source
    assert "레이아웃" in source and "입력" in source and "log 척도" in source
    svg = render(source, "svg").decode()
    assert "레이아웃" in svg
    with speaking("en"):
        assert "layout" in to_dot("googlenet", depth="stage")  # the cache keeps languages apart


def test_plotly_charts_name_a_font_with_hangul():
    from explorer.analysis import charts
    with speaking("ko"):
        fig = charts.residual_scale_chart([{"block": "a", "scale": 0.17, "relu": True}])
    assert i18n.CJK_FONT in fig.layout.font.family
    assert fig.layout.title.text == "블록별 residual scale (회색: ReLU가 없는 마지막 블록)"


# -- every page in Korean (AppTest) ----------------------------------------------------------

PAGES_KO = {  # page -> Korean its title or first heading must have
    None: "Inception 계열", "inspect": "깊이", "compare": "비교", "predict": "예측",
    "learn": "배우기", "lab": "실험", "design": "설계 작업대"}


@pytest.mark.parametrize("page", list(PAGES_KO))
def test_every_page_speaks_korean_at_lang_ko(page):
    at = clean(app(page, lang="ko"))
    texts = " ".join([*(t.value for t in at.title), *(h.value for h in at.header),
                      *(h.value for h in at.subheader), *(m.value for m in at.markdown),
                      *(c.value for c in at.caption), *(w.label for w in at.sidebar.radio),
                      *(w.label for w in at.selectbox), *(w.label for w in at.multiselect)])
    assert PAGES_KO[page] in texts, texts[:500]
    buttons = [b.label for b in at.button]
    assert all(HANGUL.search(label) for label in buttons), buttons
    if page in (None, "inspect", "compare", "learn", "lab"):
        assert buttons or at.get("form_submit_button"), "each of these pages has buttons"
    assert at.session_state["lang"] == "ko"


def test_english_stays_english_and_switching_keeps_the_page():
    at = clean(app("inspect", variant="inception_v4", depth="layer"))
    assert at.session_state["lang"] == "en"  # no link, no switch, no browser: English
    assert [r.label for r in at.sidebar.radio][0] == "Depth"
    at.button_group(key="lang").set_value("ko")
    at = clean(at.run())
    assert at.query_params["lang"] == "ko"  # links carry the language once chosen
    assert [r.label for r in at.sidebar.radio][0] == "깊이"
    assert at.selectbox(key="variant").value == "inception_v4"  # the page's state is kept
    assert at.radio(key="depth").value == "layer"
    # (back to English: in test_i18n_browser -- AppTest cannot rerun a radio whose options read
    # in Korean: it looks the value up among the labels)


def test_a_crafted_lang_value_gets_a_note_not_an_error():
    at = clean(app("learn", lang=HOSTILE))
    notes = [i.value for i in at.info if "language" in i.value]
    assert len(notes) == 1, [i.value for i in at.info]
    assert "\\<img" in notes[0] and re.search(r"(?<!\\)[<>]", notes[0]) is None  # text, not markup
    assert at.session_state["lang"] == "en" and at.title[0].value == "Learn"
    assert "lang" not in at.query_params  # the link no longer carries it
    assert not [w.value for w in at.warning if "lang" in w.value]  # no second, generic note


def test_an_exported_table_has_korean_headers_with_its_keys():
    from explorer.analysis.rows import analyze
    from explorer.core.export import analysis_csv, read_csv
    from explorer.ui.tables import export_rows
    result = analyze("googlenet", depth="stage").to_dict()
    with speaking("ko"):
        korean = analysis_csv({**result, "rows": export_rows(result["rows"])})
    settings, rows = read_csv(korean)
    assert settings["variant"] == "googlenet"  # the settings line is the same
    assert list(rows[0])[:5] == ["이름 (name)", "종류 (kind)", "논문 그림 (figure)",
                                 "입력 shape (input_shape)", "출력 shape (output_shape)"]
    assert rows[0]["이름 (name)"] == result["rows"][0]["name"]
    with speaking("en"):
        assert analysis_csv({**result, "rows": export_rows(result["rows"])}) == analysis_csv(result)


# -- the library's messages, in the page's language ------------------------------------------
# Made below the pages (explorer.variants, .spec, .runtime, .weights, .core) with _(): Korean in a
# Korean run, English everywhere else (the CLI and the tests above assert its English words).

def said(error_type, fn, *args, **kwargs) -> str:
    with pytest.raises(error_type) as err:
        fn(*args, **kwargs)
    return str(err.value)


def test_a_configuration_the_library_refuses_is_said_in_korean():
    from explorer.variants import ConfigError, resolve
    with speaking("ko"):
        text = said(ConfigError, resolve, "inception_v3", input_size=10)
    assert HANGUL.search(text) and "75x75" in text and "inception_v3" in text, text
    assert "공개 (released) 레이아웃" in text  # the layout's name in the page's words
    english = said(ConfigError, resolve, "inception_v3", input_size=10)
    assert english == ("input_size 10 is below inception_v3's minimum of 75x75 (released layout); "
                       "its native size is 299")
    with speaking("ko"):
        assert HANGUL.search(said(ConfigError, resolve, "nope"))
        assert HANGUL.search(said(ConfigError, resolve, "googlenet", scale=0.2))


def test_a_design_that_cannot_run_is_placed_in_korean():
    from explorer.analysis import design as d
    from explorer.spec.errors import ShapeError
    from explorer.variants import describe
    spec = describe("inception_v3", "paper")
    block = d.change_layer(d.open_block(spec, "inception_a.0"), "1x1", 0, stride=2)
    with speaking("ko"):
        text = said(ShapeError, d.bench, spec, "inception_a.0", block)
        layer = said(ValueError, d.change_layer, block, "1x1", 0, kernel=0)
    assert text.startswith("단계 inception_a, 블록 0: ") and "stride" in text, text
    assert layer.startswith("branch 1x1, 레이어 0: ") and HANGUL.search(layer[20:]), layer
    assert said(ShapeError, d.bench, spec, "inception_a.0", block).startswith(
        "stage inception_a, block 0: the branches give 1x1 64x18x18")


def test_a_memory_refusal_is_said_in_korean():
    from explorer.runtime.memory import MemoryRefused, check, estimate_inference
    with speaking("ko"):
        text = said(MemoryRefused, check, estimate_inference("googlenet"), max_memory="1MB")
    assert text.startswith("googlenet의 forward pass (224 px, batch 1)에는 약 "), text
    assert "가중치" in text and "이 서버가 허용하는 메모리는" in text and "--max-memory=1MB" in text
    english = said(MemoryRefused, check, estimate_inference("googlenet"), max_memory="1MB")
    assert english.startswith("a forward pass of googlenet (224 px, batch 1) needs about ")
    assert "but this server allows" in english and HANGUL.search(english) is None


def test_a_bad_upload_is_refused_in_korean(tmp_path, monkeypatch):
    from explorer.weights.checkpoints import store_upload
    from explorer.weights.formats import WeightsError, read_state_dict
    monkeypatch.setenv("INCEPTION_EXPLORER_CACHE", str(tmp_path))
    path = store_upload(b"not a checkpoint", "mine.pth")  # what the Predict page does with a file
    with speaking("ko"):
        text = said(WeightsError, read_state_dict, path)
        wrong = said(ValueError, store_upload, b"x", "notes.txt")
    assert text.startswith("mine.pth") and "PyTorch 체크포인트가 아닙니다" in text, text
    assert wrong.startswith("notes.txt") and HANGUL.search(wrong), wrong
    assert said(WeightsError, read_state_dict, path).startswith(
        "mine.pth is not a readable PyTorch checkpoint")


def test_an_image_that_cannot_be_used_is_refused_in_korean():
    from explorer.core.images import ImageError, load_image
    with speaking("ko"):
        empty = said(ImageError, load_image, b"", name="cat.jpg")
        text = said(ImageError, load_image, b"hello, world", name="notes.jpg")
    assert empty.startswith("cat.jpg") and "비어 있습니다" in empty and "또는 BMP" in empty, empty
    assert text.startswith("notes.jpg") and HANGUL.search(text), text
    assert said(ImageError, load_image, b"", name="cat.jpg").startswith("cat.jpg is empty (0 bytes)")


def test_latency_lessons_and_the_onnx_hint_are_said_in_korean():
    from explorer.runtime.latency import lessons
    from explorer.runtime.onnx import missing_message
    timed = [{"variant": v, "macs": macs, "latency": [{"batch": 1, "median_ms": ms, "min_ms": ms - 1,
                                                       "max_ms": ms + 1, "gmacs_per_s": macs / ms / 1e6,
                                                       "peak_fraction": 0.1}]}
             for v, macs, ms in (("inception_v4", 12.3e9, 40.0), ("googlenet", 1.5e9, 60.0))]
    with speaking("ko"):
        korean = lessons(timed, {"gmacs_per_s": 500.0, "size": 2048, "math": "float32", "threads": 2})
        hint = missing_message(["onnx"])
    assert len(korean) == 3 and all(HANGUL.search(s) for s in korean), korean
    assert "MACs로 지연 시간을 예측할 수 없습니다" in korean[0]
    assert HANGUL.search(hint) and 'pip install "inception-explorer[onnx]"' in hint
    assert lessons(timed)[0].endswith("MACs do not predict latency.")


def test_every_fact_a_page_shows_of_a_variant_is_in_the_korean_catalog():
    # ideas, layout notes and paper-vs-released differences: English constants (N_), said with
    # _() where a page shows them (Inspect, Overview, the graph's details)
    from explorer.analysis.probe import probe
    from explorer.variants import VARIANTS
    texts = set()
    for info in VARIANTS.values():
        texts |= {info.idea, *info.differences}
        for name, layout in info.layouts.items():
            texts |= set(layout.notes)
            spec = probe(info.name, layout=name).spec
            texts |= {s.info.idea for s in spec.stages} | {spec.head.info.idea}
            texts |= {getattr(b, "info", s.info).idea for s in spec.stages for _n, b in s.blocks}
    texts.discard("")
    with speaking("ko"):
        untranslated = sorted(t for t in texts if not HANGUL.search(_(t)))
        idea = _(VARIANTS["googlenet"].idea)
    assert not untranslated, untranslated
    assert len(texts) > 60 and idea == "1x1 병목이 있는 1x1 / 3x3 / 5x5 / pool 병렬 branch"
    assert _(VARIANTS["googlenet"].idea) == VARIANTS["googlenet"].idea  # English: as written


def test_english_kept_by_a_shared_cache_is_said_again_in_korean():
    from explorer.analysis.rows import RF_NOTES
    from explorer.core.i18n import again
    from explorer.runtime.loaded import NOTES
    from explorer.weights.checkpoints import default_preprocess
    from explorer.weights.formats import AUX_DROPPED
    with speaking("ko"):  # a model loaded by a Korean page keeps its notes in English all the same
        note = default_preprocess("inception_v2", "explorer")[1]
    kept = [note, AUX_DROPPED.format(n=18),
            "inception_a.0: branch centres differ by 0.5 x 0.5 input px (h x w); its field is the "
            "hull of theirs"]
    assert note.startswith("inception_v2 has no published weights")
    with speaking("ko"):
        korean = [again(t, *NOTES, *RF_NOTES) for t in kept]
    assert korean[0].startswith("inception_v2에는") and "크기 조정 341 (bilinear)" in korean[0]
    assert "텐서 18개" in korean[1] and korean[2].startswith("inception_a.0: branch들의 중심")
    assert [again(t, *NOTES, *RF_NOTES) for t in kept] == kept  # English: as kept
    with speaking("ko"):
        assert again("a text of no template", *NOTES) == "a text of no template"


def test_inspect_says_an_impossible_configuration_in_korean():
    # from a link (AppTest cannot rerun a page whose radio options read in Korean)
    at = clean(app("inspect", lang="ko", variant="inception_v3", size="32"))
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "inception_v3의 최소 크기 75x75보다 작습니다" in errors[0], errors
    assert "minimum" not in errors[0]


def test_design_refuses_an_impossible_edit_in_korean():
    # the edit runs in a widget's callback, before the page picks its language
    at = clean(app("design", lang="ko", variant="inception_v3", layout="paper",
                   block="inception_a.0"))
    out = next(w for w in at.number_input if w.key and w.key.startswith("d_out:"))
    out.set_value(0).run()
    errors = [e.value for e in clean(at).error]
    assert any("branch 1x1, 레이어 0" in e for e in errors), errors
    assert not any("layer 0" in e for e in errors), errors
