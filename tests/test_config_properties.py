"""Property-based tests over build configurations (hypothesis, meta device only).

Every configuration, however odd, must end one of two ways:

- it is accepted, and then the network builds and runs at the asked input size, and its
  analysis agrees with the built model (parameter totals, classifier output shapes, positive
  shapes everywhere);
- it is refused with a ``ConfigError`` whose message names the offending option -- never with
  another exception (TypeError, RuntimeError, ZeroDivisionError, IndexError, ...).

The strategies know which values are valid, which are not, and which ("maybe") depend on the
network (an input size above the minimum may still not line up), so a validator that refuses
good configurations fails here as surely as one that lets bad ones through. The same holds
through the command line: ``summary`` exits 0 with valid JSON, or 2 with one line on stderr.

Runs are derandomized and database-free, so CI sees the same examples every time.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from dataclasses import asdict, dataclass, field

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import explorer
from explorer.analysis.rows import DEPTHS, _analyze_variant, analyze
from explorer.cli import main
from explorer.variants import VARIANTS, ConfigError
from explorer.variants.config import MAX_CLASSES, MAX_INPUT_SIZE, MAX_REPEATS, MAX_WIDTH, min_input_size

OK, BAD, MAYBE = "ok", "bad", "maybe"
NAMES = list(VARIANTS)
# Every option the strategies vary; "unknown" is a misspelt keyword, "variant" an unknown name.
OPTIONS = ("variant", "layout", "num_classes", "aux_logits", "dropout", "width", "scale",
           "repeats", "input_size", "unknown")
NAN, INF = math.nan, math.inf

SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@dataclass
class Case:
    variant: str
    options: dict = field(default_factory=dict)   # keyword arguments of build / analyze
    bad: set = field(default_factory=set)         # options drawn invalid: must be refused
    maybe: set = field(default_factory=set)       # options that may be refused (input sizes)
    depth: str = "block"

    def __repr__(self):  # what hypothesis prints for a falsifying example
        return f"Case({self.variant!r}, {self.options!r}, bad={self.bad}, maybe={self.maybe}, " \
               f"depth={self.depth!r})"


def _layout_of(variant: str, layout):
    """The Layout a (valid) variant/layout pair resolves to; the default for anything else."""
    info = VARIANTS.get(variant)
    if info is None:
        return None
    if layout in info.layouts:
        return info.layouts[layout]
    return info.layouts[info.default_layout]


# --- values, by option and validity ---------------------------------------------------------

BAD_TYPES = st.sampled_from(["1", "", None, [1], b"x"])  # hashable or not, never numbers

# Floats in (0, 1] and (0, MAX_WIDTH], with the edges and the subnormals.
def _positive(upper):
    return st.one_of(st.floats(min_value=0.0, max_value=upper, exclude_min=True),
                     st.sampled_from([5e-324, 1e-300, 1e-3, upper / 2, upper]))


def _outside(upper):
    return st.one_of(st.sampled_from([0, 0.0, -0.0, -1, -1e-9, NAN, INF, -INF, 1e308,
                                      math.nextafter(upper, INF), upper * 2]),
                     st.floats(max_value=0.0), st.floats(min_value=upper, exclude_min=True))


def num_classes(status):
    if status == OK:
        return st.one_of(st.integers(1, 2000), st.sampled_from([1, 2, MAX_CLASSES]))
    return st.one_of(st.sampled_from([0, -1, MAX_CLASSES + 1, 10**12, 10.0, True, False]),
                     st.integers(max_value=0), BAD_TYPES)


def aux_logits(status, layout):
    if status == OK:
        return st.booleans() if layout is not None and layout.has_aux else st.just(False)
    wrong = st.sampled_from(["yes", "no", 1, 0, None, [True]])
    return st.one_of(st.just(True), wrong) if layout is not None and not layout.has_aux else wrong


def dropout(status):
    if status == OK:
        return st.one_of(st.none(), st.floats(0.0, 1.0, exclude_max=True),
                         st.sampled_from([0, 0.0, 0.5, math.nextafter(1.0, 0.0)]))
    return st.one_of(st.sampled_from([-0.1, -1e-300, 1, 1.0, 1.5, NAN, INF, -INF]),
                     st.floats(min_value=1.0), st.floats(max_value=-5e-324),
                     BAD_TYPES)


def width(status):
    if status == OK:
        return st.one_of(_positive(MAX_WIDTH), st.integers(1, int(MAX_WIDTH)),
                         st.sampled_from([0.25, 0.5, 0.75, 1.0, 1.3, 2.0]))
    return st.one_of(_outside(MAX_WIDTH), BAD_TYPES)


def scale(status, layout):
    offered = layout is not None and layout.scale is not None
    if status == OK:
        if not offered:
            return st.none()
        one = _positive(1.0)
        return st.one_of(st.none(), one, st.tuples(one), st.tuples(one, one, one),
                         st.lists(one, min_size=3, max_size=3))
    if not offered:  # any scale at all is refused where there are no residual blocks
        return st.one_of(_positive(1.0), st.tuples(_positive(1.0), _positive(1.0), _positive(1.0)))
    one, out = _positive(1.0), _outside(1.0)
    return st.one_of(out, BAD_TYPES, st.just(()), st.tuples(one, one),
                     st.lists(one, min_size=4, max_size=6).map(tuple),
                     st.tuples(one, out, one), st.tuples(one, st.just("x"), one))


def repeats(status, layout):
    n = len(layout.repeats) if layout is not None and layout.repeats else None
    if status == OK:
        if n is None:
            return st.none()
        # Small counts keep the builds cheap; one stage may take the maximum.
        counts = st.lists(st.sampled_from([1, 1, 2, 3]), min_size=n, max_size=n)
        big = st.tuples(counts, st.integers(0, n - 1), st.booleans()).map(
            lambda t: [MAX_REPEATS if i == t[1] and t[2] else c for i, c in enumerate(t[0])])
        return st.one_of(st.none(), counts.map(tuple), counts, big.map(tuple))
    if n is None:
        return st.one_of(st.just((1, 1, 1)), st.just([4, 7, 3]), st.just(2))
    good = st.integers(1, 3)
    wrong_value = st.sampled_from([0, -1, MAX_REPEATS + 1, 10**6, 1.0, 2.5, True, "2", None])
    return st.one_of(
        st.sampled_from([k for k in range(n + 4) if k != n]).flatmap(  # wrong length
            lambda k: st.lists(good, min_size=k, max_size=k).map(tuple)),
        st.tuples(st.integers(0, n - 1), wrong_value, st.lists(good, min_size=n, max_size=n))
          .map(lambda t: tuple(t[1] if i == t[0] else c for i, c in enumerate(t[2]))),
        st.sampled_from([4, "4,7,3", 0, -1, (), ((1,), (2,), (3,))]))


def input_size(status, info, layout, aux):
    """OK: the native size; MAYBE: at or above the minimum (it may not line up); BAD: below the
    minimum, above the limit, or not an integer."""
    lay = layout if layout is not None else next(iter(VARIANTS.values())).layouts["released"]
    native = info.native_input_size if info is not None else 224
    low = min_input_size(lay, aux is True)
    if status == OK:
        return st.sampled_from([None, native])
    if status == MAYBE:
        return st.one_of(st.sampled_from([low, low + 1, 2 * low - 1]), st.integers(low, 1000))
    return st.one_of(st.sampled_from([0, -1, -native, low - 1, 1, MAX_INPUT_SIZE + 1, 10**9,
                                      float(native), str(native), True]),
                     st.integers(max_value=low - 1), st.integers(min_value=MAX_INPUT_SIZE + 1))


@st.composite
def cases(draw, max_bad: int = 3) -> Case:
    # Which options are bad: none (half the time), one, or a few.
    n_bad = draw(st.sampled_from([0, 0, 0, 1, 1, max_bad]))
    bad = set(draw(st.permutations(OPTIONS))[:n_bad])
    case = Case(variant=draw(st.sampled_from(NAMES)), bad=set(bad),
                depth=draw(st.sampled_from(DEPTHS)))
    if "variant" in bad:
        case.variant = draw(st.sampled_from(["inception_v5", "GoogLeNet", "", "resnet50",
                                             "inception-v3"]))
    info = VARIANTS.get(case.variant)
    opts = case.options

    def present(name):
        return name in bad or draw(st.booleans())

    if present("layout"):
        if "layout" in bad:
            opts["layout"] = draw(st.sampled_from(["draft", "Paper", "released ", "timm"]))
        elif info is not None:
            opts["layout"] = draw(st.sampled_from([*info.layouts, None, "", "released"]))
    layout = _layout_of(case.variant, opts.get("layout"))
    status = lambda name: BAD if name in bad else OK  # noqa: E731
    if present("num_classes"):
        opts["num_classes"] = draw(num_classes(status("num_classes")))
    if present("aux_logits"):
        opts["aux_logits"] = draw(aux_logits(status("aux_logits"), layout))
    for name, strategy in (("dropout", dropout), ("width", width)):
        if present(name):
            opts[name] = draw(strategy(status(name)))
    if present("scale"):
        opts["scale"] = draw(scale(status("scale"), layout))
    if present("repeats"):
        opts["repeats"] = draw(repeats(status("repeats"), layout))
    if "input_size" in bad:
        opts["input_size"] = draw(input_size(BAD, info, layout, opts.get("aux_logits")))
    elif draw(st.booleans()):
        size_status = draw(st.sampled_from([OK, MAYBE, MAYBE]))
        opts["input_size"] = draw(input_size(size_status, info, layout, opts.get("aux_logits")))
        if size_status == MAYBE:
            case.maybe.add("input_size")
    if "unknown" in bad:
        opts[draw(st.sampled_from(["widht", "repeat", "stride", "aux"]))] = 1
    return case


# --- checks -----------------------------------------------------------------------------------

def named_in(message: str, option: str, case: Case) -> bool:
    if option == "unknown":  # the misspelt keyword itself
        return any(k in message for k in case.options if k not in OPTIONS)
    return option in message


def check_refusal(case: Case, err: ConfigError) -> None:
    message = str(err)
    assert message.strip(), "empty ConfigError message"
    suspects = case.bad | case.maybe
    assert suspects, f"a valid configuration was refused: {message}"
    assert any(named_in(message, o, case) for o in suspects), \
        f"the message names none of {sorted(suspects)}: {message}"
    if not case.bad:  # only a "maybe" input size: refused for not fitting, never otherwise
        assert "input_size" in message


def head_output(rows, prefix: str):
    """The output shape of the last row under ``prefix`` (the classifier's own output)."""
    under = [r for r in rows if r.name == prefix or r.name.startswith(prefix + ".")]
    assert under, f"no rows under {prefix!r}"
    return under[-1].output_shape


def check_analysis(case: Case, result) -> None:
    model = explorer.build(case.variant, device="meta", **case.options)
    info = VARIANTS[case.variant]
    assert result.variant == case.variant and result.layout == model.layout
    assert result.input_size == (case.options.get("input_size") or info.native_input_size)
    assert result.config == {k: v for k, v in asdict(model.config).items() if k != "input_size"}
    assert result.total_params == sum(p.numel() for p in model.parameters())
    assert result.total_macs > 0 and result.total_activation_bytes > 0
    assert result.rows
    for row in result.rows:
        assert row.output_shape and all(d > 0 for d in row.output_shape), row
        assert all(d > 0 for d in row.input_shape), row
    classes = model.config.num_classes
    assert head_output(result.rows, "head") == (classes,)
    for aux_name in model.aux_taps.values():  # aux heads (built with aux_logits=True)
        assert head_output(result.rows, aux_name) == (classes,)
    assert bool(model.aux_taps) == (model.config.aux_logits is True)
    if case.depth in ("stage", "block"):  # these rows partition the network
        assert sum(r.params for r in result.rows) == result.total_params


# --- the library ------------------------------------------------------------------------------

@settings(max_examples=100, **SETTINGS)
@given(case=cases())
# Regressions: non-bool aux_logits was built (truthy strings built the aux head) or crashed
# with a ValueError ("training mode is expected to be boolean") or a TypeError (unhashable).
@example(case=Case("inception_v3", {"aux_logits": "yes", "input_size": 299}, bad={"aux_logits"}))
@example(case=Case("inception_v3", {"aux_logits": "no"}, bad={"aux_logits"}))
@example(case=Case("googlenet", {"aux_logits": [True]}, bad={"aux_logits"}))
# Regressions: widths whose rounding made a block's output differ from the stage input
# (inception_v2/v3 Inception-B and inception_v4 A/B/C stages): accepted, then a RuntimeError.
@example(case=Case("inception_v3", {"width": 0.001}))
@example(case=Case("inception_v3", {"width": 0.9807, "layout": "paper"}))
@example(case=Case("inception_v2", {"width": 3.4754, "aux_logits": True}))
@example(case=Case("inception_v4", {"width": 0.9807}))
@example(case=Case("inception_v4", {"width": 1e-300, "input_size": 75}, maybe={"input_size"}))
# The edges of what is allowed.
@example(case=Case("inception_resnet_v2", {"width": MAX_WIDTH, "scale": (1.0, 5e-324, 0.5),
                                           "repeats": [1, MAX_REPEATS, 1], "dropout": 0.0}))
@example(case=Case("googlenet", {"layout": "paper", "aux_logits": True,
                                 "num_classes": MAX_CLASSES, "input_size": 223},
                   maybe={"input_size"}, depth="layer"))
def test_configs_build_and_analyse_consistently_or_are_refused_by_name(case):
    # analyze() memoises by value, and 1 == 1.0 == True: a cached answer for a valid value
    # would stand in for an invalid twin (see test_analysis_cache_tells_equal_values_apart).
    _analyze_variant.cache_clear()
    try:
        result = analyze(case.variant, depth=case.depth, **case.options)
    except ConfigError as err:
        event(f"refused: {sorted(case.bad) or sorted(case.maybe)}")
        check_refusal(case, err)
        # build refuses it too (the text may differ: analyze hands lists on as tuples)
        with pytest.raises(ConfigError) as again:
            explorer.build(case.variant, device="meta", **case.options)
        check_refusal(case, again.value)
        return
    event("accepted" + (" (input size that may not fit)" if case.maybe else ""))
    assert not case.bad, f"accepted although {sorted(case.bad)} are invalid"
    check_analysis(case, result)


# --- the command line -------------------------------------------------------------------------

FLAG_OF = {"layout": "--layout", "num_classes": "--num-classes", "width": "--width",
           "scale": "--scale", "repeats": "--repeats", "input_size": "--input-size",
           "aux_logits": "--aux", "depth": "--depth"}


def _text(value) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(_text, value))
    return repr(value) if isinstance(value, float) else str(value)


def _natural(name: str, value) -> bool:
    """Whether the parser could hand this value on as it is (a number, numbers, a name)."""
    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if name in ("repeats", "scale") and isinstance(value, (tuple, list)):
        return all(number(v) for v in value)
    return isinstance(value, str) if name == "layout" else number(value)


@st.composite
def cli_cases(draw):
    """A library case turned into ``summary`` arguments, plus text only the parser sees.

    Options the command line does not have (dropout, misspelt keywords) are dropped. A bad value
    the parser cannot tell from a good one once written out ("299" the string, [1]) becomes a
    "maybe"; an empty value ("--width=") stays bad: the parser refuses it."""
    case = draw(cases(max_bad=2))
    argv = ["summary", case.variant]
    for name, value in case.options.items():
        if name not in FLAG_OF:  # dropout, unknown keywords
            case.bad.discard("unknown" if name not in OPTIONS else name)
            continue
        if name == "aux_logits":
            if value is True:
                argv.append("--aux")
            elif value is not False:  # a flag takes no value: nothing wrong can be passed
                case.bad.discard(name)
            continue
        flag = FLAG_OF[name]
        if value is None or value == "" or value == () or value == []:
            if name in case.bad:
                argv.append(f"{flag}=")
            continue
        if name in case.bad and not _natural(name, value):
            case.bad.discard(name)
            case.maybe.add(name)
        text = _text(value)
        if text.startswith("-") or draw(st.booleans()):
            argv.append(f"{flag}={text}")
        else:
            argv += [flag, text]
    case.bad.discard("dropout")
    if draw(st.integers(0, 9)) == 0:  # text the parser refuses before the library sees it
        flag, junk = draw(st.sampled_from([("--depth", "deep"), ("--width", "wide"),
                                           ("--input-size", "299.0"), ("--input-size", "1e3"),
                                           ("--num-classes", "ten"), ("--repeats", "4,,3"),
                                           ("--scale", "0.1;0.2"), ("--bogus", "1")]))
        argv += [flag, junk]
        case.bad.add(flag.strip("-").replace("-", "_"))
    else:
        argv += ["--depth", case.depth]
    argv.append("--json")
    return case, argv


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory):
    """The CLI caches analyses on disk: keep them out of the user's cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INCEPTION_EXPLORER_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


def run_cli(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv, out=out)  # any exception escaping main is a failure
    return code, out.getvalue(), err.getvalue()


@settings(max_examples=50, **SETTINGS)
@given(drawn=cli_cases())
@example(drawn=(Case("inception_v4", {"width": 0.9807}), ["summary", "inception_v4", "--width",
                                                          "0.9807", "--json"]))
@example(drawn=(Case("inception_v3", {"width": NAN}, bad={"width"}),
                ["summary", "inception_v3", "--width", "nan", "--json"]))
@example(drawn=(Case("googlenet", {"width": -INF}, bad={"width"}),
                ["summary", "googlenet", "--width", "-inf", "--json"]))
@example(drawn=(Case("inception_resnet_v1", {"repeats": (1, 2)}, bad={"repeats"}),
                ["summary", "inception_resnet_v1", "--repeats", "1,2", "--depth", "stage",
                 "--json"]))
def test_summary_exits_0_with_json_or_2_with_one_line(drawn):
    case, argv = drawn
    code, out, err = run_cli(argv)
    assert "Traceback" not in err
    event(f"exit {code}")
    if code == 0:
        assert not case.bad, f"accepted although {sorted(case.bad)} are invalid: {argv}"
        data = json.loads(out)
        assert data["variant"] == case.variant and data["rows"]
        size = case.options.get("input_size")
        assert data["input_size"] == (int(_text(size)) if size is not None
                                      else VARIANTS[case.variant].native_input_size)
        classes = int(_text(case.options.get("num_classes", 1000)))
        heads = [r for r in data["rows"] if r["name"].split(".")[0] == "head"]
        assert data["config"]["num_classes"] == classes
        assert heads[-1]["output_shape"] == [classes]
        assert all(d > 0 for r in data["rows"] for d in r["output_shape"])
        return
    assert code == 2, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("inception-explorer: error: "), err
    suspects = case.bad | case.maybe
    assert suspects, f"valid arguments were refused: {argv}: {err}"
    message = lines[0].replace("-", "_")
    assert any(o in message or (o == "aux_logits" and "aux" in message) or
               (o == "variant" and "unknown variant" in message) for o in suspects) or \
        "unrecognized arguments" in message, f"names none of {sorted(suspects)}: {err}"


@pytest.mark.parametrize("valid, twin", [({"input_size": 224}, {"input_size": 224.0}),
                                         ({"num_classes": 1}, {"num_classes": True})])
def test_analysis_cache_tells_equal_values_apart(valid, twin):
    _analyze_variant.cache_clear()
    analyze("googlenet", depth="stage", **valid)
    with pytest.raises(ConfigError, match=next(iter(twin))):
        analyze("googlenet", depth="stage", **twin)


# --- option checks that are not build configurations ------------------------------------------

def test_unknown_depth_is_a_config_error_naming_depth():
    with pytest.raises(ConfigError, match="depth must be one of stage, block, layer"):
        analyze("googlenet", depth="deep")


@pytest.mark.parametrize("option", [{"width": {}}, {"repeats": [[1], [2], [3]]},
                                    {"layout": ["paper"]}])
def test_unhashable_or_listed_options_are_config_errors(option):
    with pytest.raises(ConfigError, match=next(iter(option))):
        analyze("inception_v4", depth="stage", **option)
    with pytest.raises(ConfigError, match=next(iter(option))):
        explorer.build("inception_v4", device="meta", **option)
