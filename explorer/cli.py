"""Command line: ``python -m explorer`` / ``inception-explorer``.

    variants [--json]
    describe VARIANT|SPEC.json [--block NAME] [--json] (+ the build options)
    summary VARIANT [--layout L] [--input-size N] [--depth D] [--width W] [--num-classes K]
            [--aux] [--repeats A,B,C] [--scale S] [--json | --csv | --format torchinfo]
    graph VARIANT [--depth D] [--format dot|svg|png] [-o FILE] (+ the build options)
    compare VARIANT... [--input-size N] [--layout L] [--width W] [--num-classes K]
            [--scale S] [--repeats A,B,C] [--latency [--device cpu|cuda] [--max-memory SIZE]
            [--runtimes eager,for_inference,onnxruntime]] [--json]
    weights [VARIANT] [--json]
    weights fetch [VARIANT.TAG ...|--all] --to DIR [--endpoint URL]
    weights verify DIR
    app [STREAMLIT OPTIONS]
    predict IMAGE... --variant V [--layout L] --weights TAG|URL|FILE [--top-k K]
            [--preprocess-like TAG] [--device cpu|cuda] [--precision P] [--max-memory SIZE]
            [--json]
    time VARIANT [--device cpu|cuda] [--runs N] [--max-memory SIZE] [--json] (+ build options)
    export VARIANT|SPEC.json [--weights FILE] --format onnx -o OUT [--opset N] [--max-memory SIZE]
           (+ build options): checked against PyTorch before it is written
    signal VARIANT [--width W] [--repeats A,B,C] [--scale S] [--input-size N] [--json]
    race VARIANT[@SCALE]... [--width W] [--repeats A,B,C] [--scale S] [--input-size N]
         [--steps N] [--seeds 0,1,2] [--optimizer rmsprop|adam] [--target ACC] [--json]

``compare --latency --json`` prints an object instead of a list: ``rows`` (the compare rows,
each with ``latency``: one entry per batch with ``batch``, ``median_ms``, ``min_ms``,
``max_ms``, ``runs``, ``gmacs_per_s`` = MACs x batch / median, ``peak_fraction`` = that over the
peak, ``device_name``, ``threads``), ``peak`` (``gmacs_per_s``, ``size``, ``macs``, ``best_ms``,
``median_ms``, ``runs``, ``dtype``, ``device``, ``device_name``, ``threads``) and ``lessons``
(the sentences the numbers support).

``summary``, ``graph``, ``compare``, ``time`` and ``race`` take ``--replace NAME=FILE`` (again for
more): the network with block NAME (``inception_a.0``), or every block of stage NAME
(``inception_a``), replaced by the design in FILE (one block as JSON, the Design page's download
or ``describe --block``); ``compare`` then lists each network as it is and as designed.

Bad input gets one line naming the problem and what is allowed, and exit status 2. ``predict``
answers every image it can and exits with 1 when any image could not be read. ``predict`` and
``time`` build real models: an estimated peak memory above the budget (``--max-memory``, else
``$INCEPTION_EXPLORER_MAX_MEMORY``, else half of the machine) is refused before anything is built.
"""

from __future__ import annotations

import argparse
import json
import sys

from explorer.core.text import shape_text


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _csv_ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 4,7,3, got {text!r}") from None


def _csv_floats(text: str):
    try:
        values = tuple(float(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number or three (A,B,C) such as 0.17,0.1,0.2, got {text!r}") from None
    return values[0] if len(values) == 1 else values


def _build_options(p: argparse.ArgumentParser, depth: bool = True) -> None:
    p.add_argument("--layout", help="released (checkpoint-compatible) or paper (default: the "
                   "variant's own, released where there are public weights)")
    p.add_argument("--input-size", type=int, help="input height = width (default: native size)")
    p.add_argument("--width", type=float, default=1.0, help="channel multiplier (1.0 = reference)")
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--aux", action="store_true", help="build the auxiliary head(s)")
    p.add_argument("--repeats", type=_csv_ints, help="blocks per stage, e.g. 4,7,3 (v4 / IR)")
    p.add_argument("--scale", type=_csv_floats, help="residual scale(s) of IR blocks")
    if depth:
        p.add_argument("--depth", default="block", choices=("stage", "block", "layer"))


def _replace_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--replace", action="append", metavar="NAME=FILE",
                   help="replace block NAME (inception_a.0) or every block of stage NAME "
                        "(inception_a) by the design in FILE (one block as JSON); repeatable")


def replacements(args) -> dict:
    """``--replace NAME=FILE`` options as {name: block}, each file read and checked."""
    from pathlib import Path

    from explorer.analysis.design import from_json
    from explorer.variants import ConfigError

    out = {}
    for item in getattr(args, "replace", None) or ():
        name, eq, path = item.partition("=")
        if not eq or not name or not path:
            raise UsageError(f"--replace takes NAME=FILE, e.g. --replace inception_a.0=design.json; "
                             f"got {item!r}")
        try:
            text = Path(path).read_text()
        except OSError as err:
            raise UsageError(f"--replace {item}: cannot read {path}: {err.strerror}") from None
        try:
            out[name] = from_json(text)
        except ConfigError as err:
            raise ConfigError(f"--replace {item}: {err}") from None
    return out


def designed(net, config: dict | None, args):
    """``net`` (a variant name or a NetSpec) with the ``--replace`` designs placed: a NetSpec
    then (a design that cannot run there: ShapeError naming its branch and layer)."""
    designs = replacements(args)
    if not designs:
        return net
    from explorer.spec.replace import replaced
    from explorer.variants import ConfigError, describe

    if isinstance(net, str):
        net = describe(net, **{k: v for k, v in (config or {}).items() if v is not None})
    try:
        return replaced(net, designs)
    except ConfigError as err:
        raise type(err)(f"--replace on {net.variant}: {err}") from None


def _config(args) -> dict:
    config = {"layout": args.layout, "width": args.width, "num_classes": args.num_classes,
              "aux_logits": args.aux}
    if args.repeats is not None:
        config["repeats"] = args.repeats
    if args.scale is not None:
        config["scale"] = args.scale
    return config


def make_parser() -> Parser:
    parser = Parser(prog="inception-explorer", description="Explore the Inception family of CNNs.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    p = sub.add_parser("variants", help="list the variants")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("summary", help="per-stage / block / layer params, MACs and shapes")
    p.add_argument("variant")
    _build_options(p)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--csv", action="store_true")
    fmt.add_argument("--format", choices=("table", "json", "csv", "torchinfo"),
                     help="torchinfo: torchinfo's own table of the same model")
    _replace_option(p)
    p = sub.add_parser("describe", help="the network as data (its NetSpec), or one block of it")
    p.add_argument("variant", help="a variant name or the path of a spec file (.json)")
    p.add_argument("--block", help="one block by its qualified name, e.g. inception_a.0")
    p.add_argument("--json", action="store_true", help="compact JSON (the output is JSON either way)")
    _build_options(p)
    p = sub.add_parser("graph", help="the module graph as DOT, SVG or PNG")
    p.add_argument("variant")
    _build_options(p)
    p.add_argument("--format", default="dot", choices=("dot", "svg", "png"))
    p.add_argument("-o", "--output", help="file to write (default: standard output)")
    _replace_option(p)
    p = sub.add_parser("compare", help="totals of several variants side by side")
    p.add_argument("variants", nargs="+", metavar="VARIANT")
    p.add_argument("--input-size", type=int, help="one input size for all (default: each native)")
    p.add_argument("--layout", help="released or paper, for the variants that have it "
                   "(default: each variant's own)")
    p.add_argument("--width", type=float, default=1.0, help="channel multiplier (1.0 = reference)")
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--scale", type=_csv_floats, help="residual scale(s), for the IR variants")
    p.add_argument("--repeats", type=_csv_ints, help="blocks per stage, e.g. 4,7,3 (v4 / IR)")
    p.add_argument("--latency", action="store_true",
                   help="also time each network at batch 1 and 16 (random weights) and a matmul "
                        "peak: latency, achieved GMAC/s, share of the peak, what they say")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="with --latency")
    _replace_option(p)
    p.add_argument("--runtimes", default="eager", metavar="LIST",
                   help="with --latency: eager (always), for_inference (BN folded, "
                        "channels-last), onnxruntime (the checked ONNX export; CPU, onnx extra), "
                        "comma-separated, timed in the same turns (default: eager)")
    _max_memory(p)
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("weights", help="the public pretrained weights of each variant",
                       epilog="'weights fetch --help' and 'weights verify --help': a folder of "
                              "weights for a server without internet")
    p.add_argument("variant", nargs="?")
    p.add_argument("--json", action="store_true")
    sub.add_parser("app", help="start the app (any streamlit run options follow)", add_help=False)
    p = sub.add_parser("predict", help="top-k ImageNet classes of images, with real weights")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--variant", required=True)
    p.add_argument("--layout", help="default: the variant's own")
    p.add_argument("--weights", default="DEFAULT",
                   help="a tag (see the 'weights' command; default: the variant's default), "
                        "a URL or a checkpoint file (.pth, .pt, .safetensors)")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--preprocess-like", metavar="TAG",
                   help="preprocess a file or URL like these registry weights (default: the "
                        "variant's default weights of the file's checkpoint format)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--precision", default="float32", choices=("float32", "bfloat16", "float16"),
                   help="arithmetic of the optimised network (BN folded, channels-last): "
                        "bfloat16 on CPUs with native bf16 (AVX-512 BF16, AMX) and GPUs, "
                        "float16 on GPUs; inputs and outputs stay float32")
    _max_memory(p)
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("time", help="build a variant with random weights and time a forward pass")
    p.add_argument("variant")
    _build_options(p)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--runs", type=int, default=5, help="timed runs after one warm-up")
    _replace_option(p)
    _max_memory(p)
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("export", help="an ONNX file of a variant, checked with ONNX Runtime")
    p.add_argument("variant", help="a variant name or the path of a spec file (.json)")
    _build_options(p, depth=False)
    p.add_argument("--weights", metavar="FILE",
                   help="a checkpoint file (.pth, .pt, .safetensors; default: random weights, "
                        "seed 0: the graph, not predictions)")
    p.add_argument("--format", required=True, choices=("onnx",))
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="the file to write")
    p.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's, 20)")
    _max_memory(p)
    p = sub.add_parser("signal", help="Lab: activation std and gradient norm per block at init")
    p.add_argument("variant")
    _lab_options(p)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("race", help="Lab: train networks side by side on real MNIST digits")
    p.add_argument("variants", nargs="+", metavar="VARIANT[@SCALE]")
    _lab_options(p)
    p.add_argument("--steps", type=int, default=400, help="training steps (batch 32)")
    p.add_argument("--seeds", type=_csv_ints, default=(0,), help="e.g. 0,1,2")
    p.add_argument("--optimizer", default="rmsprop", help="rmsprop (the papers' recipe) or adam")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--target", type=float, default=0.9, help="validation accuracy to reach")
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when there is one")
    p.add_argument("--replace", action="append", metavar="NAME=FILE",
                   help="race each network also with block or stage NAME replaced by the design "
                        "in FILE (its channels scaled by --width, as the Lab builds every block)")
    p.add_argument("--json", action="store_true")
    return parser


def _max_memory(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-memory", metavar="SIZE",
                   help="refuse to build a model whose estimated peak memory is above SIZE "
                        "(4GiB, 500MB, bytes or a share such as 40%%; default: "
                        "$INCEPTION_EXPLORER_MAX_MEMORY, else half of this machine's memory)")


def _lab_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layout", default="paper")
    p.add_argument("--width", type=float, default=0.25, help="channel multiplier (default 0.25)")
    p.add_argument("--repeats", type=_csv_ints, help="blocks per stage, e.g. 10,20,10")
    p.add_argument("--scale", type=float, help="residual scale of the IR variants, e.g. 0.1")
    p.add_argument("--input-size", type=int, help="default: the network's minimum, 75")


def weights_parser() -> Parser:
    """``weights fetch`` / ``weights verify``: parsed apart, so that ``weights VARIANT`` keeps
    listing a variant's weights."""
    parser = Parser(prog="inception-explorer weights")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    p = sub.add_parser("fetch", help="download weights into a folder for a server without internet")
    p.add_argument("names", nargs="*", metavar="VARIANT.TAG",
                   help="e.g. inception_v4.tf_in1k (a bare variant: its default weights)")
    p.add_argument("--all", action="store_true", help="every weights file in the registry")
    p.add_argument("--to", required=True, metavar="DIR",
                   help="the folder the server names in $INCEPTION_EXPLORER_WEIGHTS")
    p.add_argument("--endpoint", metavar="URL",
                   help="a mirror with the original paths (default: the original hosts; "
                        "$HF_ENDPOINT for Hugging Face files)")
    p = sub.add_parser("verify", help="check every weights file in a folder (hash, loads)")
    p.add_argument("folder", metavar="DIR")
    return parser


def cmd_weights_fetch(args, out) -> int:
    from explorer.runtime.offline import fetch, select

    if args.all == bool(args.names):
        raise UsageError("name the weights to fetch (e.g. inception_v4.tf_in1k) or give --all")
    specs = select(None if args.all else args.names)
    results = fetch(specs, args.to, endpoint=args.endpoint, progress_for=lambda _: _download_bar(),
                    say=lambda line: out.write(line + "\n"))
    bad = [r.name for r in results if not r.ok]
    out.write(f"{len(results) - len(bad)} of {len(results)} ready in {args.to}"
              + (f"; failed: {', '.join(bad)}" if bad else "") + "\n")
    if not bad:
        out.write(f"on the server: export INCEPTION_EXPLORER_WEIGHTS={args.to}\n")
    return 1 if bad else 0


def cmd_weights_verify(args, out) -> int:
    from explorer.runtime.offline import verify

    checks, ignored = verify(args.folder)
    for c in checks:
        out.write(f"{'ok ' if c.ok else 'BAD'}  {c.name}: {c.message}\n")
    for name in ignored:
        out.write(f"--   {name}: not named <variant>.<tag>.safetensors|.pth|.pt of a registry "
                  "entry, so the app does not use it\n")
    if not checks:
        out.write(f"no weights files in {args.folder}: fill it with 'weights fetch ... --to "
                  f"{args.folder}'\n")
        return 1
    bad = [c.name for c in checks if not c.ok]
    out.write(f"{len(checks) - len(bad)} of {len(checks)} files good"
              + (f"; bad: {', '.join(bad)}" if bad else "") + "\n")
    return 1 if bad else 0


def cmd_app(args, out) -> int:
    """``streamlit run`` on the installed app, with the caller's streamlit options."""
    from pathlib import Path

    from streamlit.web import cli as stcli

    app = Path(__file__).with_name("app.py")
    sys.argv = ["streamlit", "run", str(app), *args.rest]
    return stcli.main()


def _registry():
    from explorer.variants import VARIANTS
    return VARIANTS


def cmd_variants(args, out) -> None:
    VARIANTS = _registry()  # noqa: N806 -- the registry, as everywhere else
    rows = [{"name": v.name, "title": v.title, "paper": v.paper, "arxiv": v.arxiv, "year": v.year,
             "native_input_size": v.native_input_size, "layouts": list(v.layouts),
             "default_layout": v.default_layout, "idea": v.idea} for v in VARIANTS.values()]
    if args.json:
        json.dump(rows, out, indent=2)
        out.write("\n")
        return
    for r in rows:
        out.write(f"{r['name']:<21} {r['year']}  {r['native_input_size']}px  "
                  f"{'/'.join(r['layouts']):<15} {r['title']}\n")


def network(name: str, config: dict | None = None):
    """A variant name as it is, or the NetSpec in the JSON file at that path (which states its
    own configuration: build options other than the defaults are refused with it)."""
    from pathlib import Path

    path = Path(name)
    if name.endswith(".json") or (path.suffix and path.is_file()):
        from explorer.spec.netspec import NetSpec
        try:
            text = path.read_text()
        except OSError as err:
            raise ValueError(f"cannot read the spec file {name}: {err.strerror}") from None
        chosen = [k for k, v in (config or {}).items()
                  if v not in (None, False) and (k, v) not in (("width", 1.0), ("num_classes", 1000))]
        if chosen:
            raise UsageError(f"a spec file states its own configuration: leave out "
                             f"{', '.join(chosen)} (edit the file instead)")
        return NetSpec.from_json(text)
    return name


def cmd_describe(args, out) -> None:
    from explorer.variants import describe

    spec = network(args.variant, _config(args))
    if isinstance(spec, str):
        spec = describe(spec, **_config(args))
    value = spec.block(args.block).to_dict() if args.block else spec.to_dict()
    json.dump(value, out, indent=1 if args.json else 2)
    out.write("\n")


def cmd_summary(args, out) -> None:
    fmt = args.format or ("json" if args.json else "csv" if args.csv else "table")
    if fmt == "torchinfo" and args.replace:
        raise UsageError("--format torchinfo reads a variant by name; leave out --replace, or "
                         "choose table, json or csv")
    if fmt == "torchinfo":
        from explorer.core.cache import cached_json

        def compute():
            from explorer.runtime.torchinfo_view import torchinfo_text
            return torchinfo_text(args.variant, input_size=args.input_size, depth=args.depth,
                                  **_config(args))

        from importlib.metadata import version
        from pathlib import Path

        # the answer also depends on torchinfo and on how we call it
        request = {"variant": args.variant, "input_size": args.input_size, "depth": args.depth,
                   "config": _config(args), "torchinfo": version("torchinfo"),
                   "caller": Path(__file__).parent.joinpath("runtime", "torchinfo_view.py").read_text()}
        out.write(cached_json("torchinfo", request, compute) + "\n")
        return
    from explorer.analysis.cached import analysis_dict

    spec = designed(network(args.variant, _config(args)), {**_config(args),
                    "input_size": args.input_size}, args)
    if isinstance(spec, str):
        result = analysis_dict(args.variant, args.input_size, args.depth, **_config(args))
    else:
        from explorer.analysis.rows import analyze
        result = analyze(spec, input_size=args.input_size, depth=args.depth).to_dict()
    if fmt == "json":
        json.dump(result, out, indent=2)
        out.write("\n")
        return
    rows = result["rows"]
    if fmt == "csv":
        from explorer.core.export import analysis_csv
        out.write(analysis_csv(result))
        return
    out.write(f"{result['variant']} ({result['layout']} layout) at {result['input_size']}x"
              f"{result['input_size']}, depth {result['depth']}\n")
    out.write(f"{'name':<44} {'kind':<18} {'output':>16} {'params':>12} {'bn_params':>9} "
              f"{'MACs':>15} {'%MACs':>6} {'RF h x w':>11} {'jump':>9}\n")
    whole = result.get("rf_whole_input")
    for r in rows:
        shape = shape_text(r["output_shape"], "x")
        rf = shape_text(r["rf"], "x") if r.get("rf") else "-"
        jump = shape_text(r["jump"], "x") if r.get("jump") else "-"
        mark = " *" if r["name"] == whole else ""
        out.write(f"{r['name'][:44]:<44} {r['kind'][:18]:<18} {shape:>16} {r['params']:>12,} "
                  f"{r['bn_params']:>9,} {r['macs']:>15,} {100 * r['macs_share']:>6.1f} {rf:>11} "
                  f"{jump:>9}{mark}\n")
    total_macs = result["total_macs"]
    out.write(f"total params {result['total_params']:,} (BatchNorm scale and shift: "
              f"{result['total_bn_params']:,} of them); total MACs {total_macs:,} "
              f"({total_macs / 1e9:.3f} G); {result['macs_convention']}\n")
    out.write("RF: input pixels one output unit sees (height x width); jump: input pixels "
              "between neighbouring units\n")
    if whole:
        out.write(f"* {whole}: the first row whose central unit sees the whole "
                  f"{result['input_size']}x{result['input_size']} input\n")
    for note in result.get("rf_notes", []):
        out.write(f"note: {note}\n")


def cmd_graph(args, out) -> None:
    config = _config(args)
    if args.input_size is not None:
        config["input_size"] = args.input_size

    def dot_of():
        from explorer.analysis.graph import to_dot
        spec = designed(network(args.variant, _config(args)), config, args)
        return to_dot(spec, depth=args.depth, **(config if isinstance(spec, str) else {}))

    dot = dot_of()
    from explorer.analysis.graph import GraphvizMissing, render
    try:
        data = dot.encode() if args.format == "dot" else render(dot, args.format)
    except GraphvizMissing as err:
        raise UsageError(str(err)) from None
    if args.output:
        with open(args.output, "wb") as f:
            f.write(data)
    elif args.format == "png":
        raise UsageError("PNG is binary: give a file with -o FILE")
    else:
        out.write(data.decode())


def cmd_compare(args, out) -> None:
    from explorer.analysis.compare import compare_rows

    nets = [network(v) for v in args.variants]
    if args.replace:  # each network as it is, then as designed
        from explorer.analysis.compare import compare_config
        both = []
        for n in nets:
            config = compare_config(n, layout=args.layout, width=args.width,
                                    num_classes=args.num_classes, scale=args.scale,
                                    repeats=args.repeats)[0] if isinstance(n, str) else {}
            if args.input_size:
                config["input_size"] = args.input_size
            both += [n, designed(n, config, args)]
        nets = both
    if args.latency and not all(isinstance(n, str) for n in nets):
        raise UsageError("--latency times variants by name; a spec file is compared on its "
                         "description (leave out --latency), or timed with 'time SPEC.json'")

    def rows_of():
        return compare_rows(nets, args.input_size, layout=args.layout, width=args.width,
                            num_classes=args.num_classes, scale=args.scale, repeats=args.repeats)

    rows = rows_of()
    if args.replace:  # rows 1, 3, ...: the network before them, designed
        for original, row in zip(rows[::2], rows[1::2]):
            row.update(variant=f"{original['variant']} (designed)", skipped=original["skipped"],
                       top1=None, top5=None, accuracy_source="not trained")
    if args.latency:
        return _compare_latency(args, rows, out)
    if args.json:
        json.dump(rows, out, indent=2)
        out.write("\n")
        return
    chosen = {k: v for k, v in vars(args).items()
              if k in ("layout", "width", "num_classes", "scale", "repeats")
              and v not in (None, 1.0, 1000, "released")}
    if chosen:
        out.write("built with " + ", ".join(f"{k} {v}" for k, v in chosen.items())
                  + " (where it applies)\n")
    out.write(f"{'variant':<21} {'layout':<8} {'input':>5} {'params':>12} {'GMACs':>7} "
              f"{'act. MiB':>9} {'top-1':>6} {'top-5':>6}  source\n")
    for r in rows:
        top1 = f"{r['top1']:.1f}" if r["top1"] is not None else "-"
        top5 = f"{r['top5']:.1f}" if r["top5"] is not None else "-"
        out.write(f"{r['variant']:<21} {r['layout']:<8} {r['input_size']:>5} {r['total_params']:>12,} "
                  f"{r['total_macs'] / 1e9:>7.3f} {r['activation_bytes'] / 2**20:>9.1f} "
                  f"{top1:>6} {top5:>6}  {r['accuracy_source']}\n")
    for r in rows:
        for why in r["skipped"]:
            out.write(f"note: {why}\n")
    out.write("params include BatchNorm's scale and shift; accuracy: published, at the native "
              "size with the reference build, whatever options are chosen here\n")


def _compare_latency(args, rows, out) -> None:
    """``compare --latency``: the rows, each network timed (``explorer.runtime.latency.measure``)."""
    from explorer.runtime.latency import (
        BATCHES,
        RUNTIMES,
        available_runtimes,
        estimate,
        measure,
        runtime_lessons,
    )
    from explorer.runtime.memory import check

    runtimes = tuple(dict.fromkeys(["eager", *filter(None, args.runtimes.split(","))]))
    unknown = [r for r in runtimes if r not in RUNTIMES]
    if unknown:
        raise UsageError(f"--runtimes: unknown {', '.join(unknown)}; choose from "
                         f"{', '.join(RUNTIMES)}")
    here = available_runtimes(args.device)
    if "onnxruntime" in runtimes and "onnxruntime" not in here:
        from explorer.runtime.onnx import missing, missing_message
        gone = missing()
        raise UsageError(missing_message(gone) if gone else
                         "--runtimes onnxruntime: ONNX Runtime is timed on the CPU only here")

    if args.device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise UsageError("--device cuda: no CUDA GPU is available here")
    check(estimate(rows, args.device, runtimes), max_memory=args.max_memory)
    report = measure(rows, device=args.device, runtimes=runtimes,
                     progress=_progress_line() if not args.json else None)
    if args.json:
        timed = {r["variant"]: r for r in report["rows"]}
        others = {"runtime_lessons": runtime_lessons(report["rows"])} if len(runtimes) > 1 else {}
        json.dump({"rows": [{**r, "latency": timed[r["variant"]]["latency"],
                             **({"runtimes": timed[r["variant"]]["runtimes"]}
                                if "runtimes" in timed[r["variant"]] else {})} for r in rows],
                   "peak": report["peak"], "lessons": report["lessons"], **others}, out, indent=2)
        out.write("\n")
        return
    cols = "".join(f" {'ms @' + str(b):>10} {'GMAC/s @' + str(b):>10} {'peak @' + str(b):>8}"
                   for b in BATCHES)
    out.write(f"{'variant':<21} {'input':>5} {'GMACs':>7}{cols}\n")
    for r in report["rows"]:
        cells = "".join(f" {t['median_ms']:>10.1f} {t['gmacs_per_s']:>10.1f} "
                        f"{100 * t['peak_fraction']:>7.1f}%" for t in r["latency"])
        out.write(f"{r['variant']:<21} {r['input_size']:>5} {r['macs'] / 1e9:>7.3f}{cells}\n")
        for rt, ts in r.get("runtimes", {}).items():
            out.write(f"  {RUNTIMES[rt]}: " + ", ".join(
                f"{t['median_ms']:.1f} ms @{t['batch']} ({t['of_eager']:.2g} of eager)"
                for t in ts) + "\n")
    top = report["peak"]
    out.write(f"matmul peak: {top['gmacs_per_s']:.1f} GMAC/s ({top['size']}x{top['size']} "
              f"{top['math']} as {top['kernel']}, fastest of {top['runs']} runs, {top['device_name']}, "
              f"{top['threads']} threads); latency: median ms, random weights, no autograd\n")
    for sentence in report["lessons"] + runtime_lessons(report["rows"]):
        out.write(f"- {sentence}\n")


def _progress_line():
    """Progress on standard error, one line rewritten (only when it is a terminal)."""
    if not sys.stderr.isatty():
        return None

    def show(frac: float, text: str) -> None:
        print(f"\r{100 * frac:3.0f} % {text:<60}", end="\n" if frac >= 1 else "",
              file=sys.stderr, flush=True)
    return show


def cmd_weights(args, out) -> None:
    from explorer.variants import get_variant
    from explorer.weights.pretrained import REGISTRY

    variant = get_variant(args.variant).name if args.variant else None
    specs = [s for s in REGISTRY if variant in (None, s.variant)]
    if args.json:
        json.dump([{"name": s.name, "variant": s.variant, "tag": s.tag, "source": s.checkpoint_format,
                    "location": s.location, "sha256_prefix": s.sha256_prefix,
                    "preprocess": s.preprocess.describe(), "top1": s.top1, "top5": s.top5,
                    "accuracy_source": s.accuracy_source} for s in specs], out, indent=2)
        out.write("\n")
        return
    if not specs:
        out.write(f"{variant} has no public pretrained weights\n")
    for s in specs:
        out.write(f"{s.name:38} {s.checkpoint_format:11} top-1 {s.top1:.1f} %  {s.location}\n"
                  f"{'':38} {s.preprocess.describe()}\n")


def cmd_predict(args, out) -> int:
    from explorer.runtime.inference import predict
    from explorer.variants import get_variant
    from explorer.weights.pretrained import find_spec

    preprocess = None
    if args.preprocess_like:
        preprocess = find_spec(get_variant(args.variant).name, args.preprocess_like).preprocess
    results = predict(args.images, args.variant, args.weights, layout=args.layout,
                      top_k=args.top_k, device=args.device, progress=_download_bar(),
                      preprocess=preprocess, max_memory=args.max_memory,
                      precision=args.precision)
    if args.json:
        json.dump(results, out, indent=2)
        out.write("\n")
    else:
        for r in results:
            out.write(f"{r['image']}\n")
            if "error" in r:
                out.write(f"  error: {r['error']}\n")
                continue
            for t in r["top"]:
                out.write(f"  {100 * t['prob']:6.2f} %  {t['index']:4d}  {t['label']}\n")
    return 0 if all("top" in r for r in results) else 1


def cmd_time(args, out) -> None:
    from explorer.runtime.memory import check, estimate_inference
    from explorer.runtime.timing import time_variant

    if args.runs < 1:
        raise UsageError(f"--runs must be at least 1, got {args.runs}")
    config = _config(args)
    variant = designed(network(args.variant, config), {**config, "input_size": args.input_size},
                       args)
    config = config if isinstance(variant, str) else {}
    need = estimate_inference(variant, input_size=args.input_size, device=args.device, **config)
    check(need, max_memory=args.max_memory)
    t = time_variant(variant, device=args.device, input_size=args.input_size, repeats=args.runs,
                     **config)
    t["estimated_peak_bytes"] = need.total
    if args.json:
        json.dump(t, out, indent=2)
        out.write("\n")
        return
    out.write(f"{args.variant} at {t['input_size']} px on {t['device_name']}: median "
              f"{t['median_ms']:.1f} ms (min {t['min_ms']:.1f}, max {t['max_ms']:.1f}) over "
              f"{t['repeats']} runs; {need.needs()} ({need.parts()})\n")


def cmd_export(args, out) -> int:
    from pathlib import Path

    from explorer.runtime import onnx
    from explorer.runtime.memory import check
    from explorer.variants import resolve

    try:
        onnx.require()
    except onnx.OnnxMissing as err:
        raise UsageError(str(err)) from None
    target = Path(args.output)
    if target.is_dir() or not target.parent.is_dir():
        raise UsageError(f"-o {args.output}: give a file in an existing folder, such as "
                         f"{onnx.onnx_file_name(args.variant)}")
    if args.weights is not None and not Path(args.weights).is_file():
        raise UsageError(f"--weights {args.weights}: no such file (give a checkpoint file: "
                         ".pth, .pt or .safetensors)")
    if args.opset is not None and not 18 <= args.opset <= onnx.OPSET:
        raise UsageError(f"--opset {args.opset}: this exporter writes opsets 18 to {onnx.OPSET}")
    config = _config(args)
    variant = network(args.variant, config)  # a name, or the NetSpec of a .json file
    if isinstance(variant, str):
        resolve(variant, input_size=args.input_size, **config)  # a bad option: said before the work
    else:
        config = {}
    check(onnx.estimate(variant, input_size=args.input_size, **config),
          max_memory=args.max_memory)
    try:
        exported = onnx.export_variant(variant, weights=args.weights,
                                       input_size=args.input_size,
                                       opset=args.opset or onnx.OPSET, **config)
    except onnx.ExportCheckFailed as err:
        print(f"inception-explorer: export refused: {err}", file=sys.stderr)
        return 1
    exported.write(target)
    out.write(f"{exported.summary()}\nwrote {target}\n")
    return 0


def _download_bar():
    """Download progress on standard error (only when it is a terminal, or for big files)."""
    state = {"last": -1}

    def report(done: int, total: int | None) -> None:
        percent = int(100 * done / total) if total else -1
        if percent == state["last"] and done:
            return
        state["last"] = percent
        text = f"{done / 1e6:7.1f} MB" + (f" / {total / 1e6:.1f} MB ({percent} %)" if total else "")
        end = "\n" if total and done >= total else ""
        print(f"\rdownloading {text}", end=end, file=sys.stderr, flush=True)

    return report


def cmd_signal(args, out) -> None:
    from explorer.lab import signal

    result = signal(args.variant, width=args.width, repeats=args.repeats, scale=args.scale,
                    input_size=args.input_size, layout=args.layout, batch=args.batch, seed=args.seed)
    if args.json:
        json.dump(result, out, indent=2)
        out.write("\n")
        return
    out.write(f"{result['variant']} {result['config']}\n{'block':<32} {'activation std':>15} "
              f"{'grad norm':>12}\n")
    for r in result["rows"]:
        out.write(f"{r['name']:<32} {r['activation_std']:>15.4f} {r['grad_norm']:>12.4g}\n")


def race_configs(names, args) -> list:
    from explorer.lab.present import parse_network

    configs = [parse_network(name, width=args.width, repeats=args.repeats,
                             input_size=args.input_size, scale=args.scale, layout=args.layout)
               for name in names]
    designs = replacements(args)
    if designs:
        from dataclasses import replace

        from explorer.analysis.design import encode
        configs = [x for c in configs for x in (c, *(
            replace(c, design=encode(block), design_at=name) for name, block in designs.items()))]
    return configs


def cmd_race(args, out) -> None:
    from explorer.lab import make_request, race

    request = make_request(race_configs(args.variants, args), seeds=args.seeds, steps=args.steps,
                           optimizer=args.optimizer, batch=args.batch, device=args.device,
                           target=args.target)

    def progress(p):
        left = f", about {p['seconds_left']:.0f} s left" if p["seconds_left"] is not None else ""
        print(f"\rrace: {100 * p['done'] / p['total']:5.1f} %{left}   ", end="", file=sys.stderr,
              flush=True)

    result = race(request, on_progress=progress if sys.stderr.isatty() else None)
    result.pop("stopped", None)
    if args.json:
        json.dump(result, out, indent=2)
        out.write("\n")
        return
    target = 100 * request.target
    out.write(f"{'network':<40} {'seeds':>5} {'reached':>7} {f'steps to {target:.0f} %':>16} "
              f"{'seconds':>13} {'final val acc %':>16}\n")
    for s in result["summary"]:
        st, sec, acc = s["steps_to_target"], s["seconds_to_target"], s["final_val_acc"]
        steps = f"{st['mean']:.0f} +- {st['std']:.0f}" if st["mean"] is not None else "-"
        secs = f"{sec['mean']:.1f} +- {sec['std']:.1f}" if sec["mean"] is not None else "-"
        out.write(f"{s['label'][:40]:<40} {len(s['seeds']):>5} {s['reached']:>7} {steps:>16} "
                  f"{secs:>13} {100 * acc['mean']:>9.1f} +- {100 * acc['std']:.1f}\n")


COMMANDS = {"variants": cmd_variants, "summary": cmd_summary, "describe": cmd_describe,
            "graph": cmd_graph,
            "compare": cmd_compare, "weights": cmd_weights, "predict": cmd_predict,
            "time": cmd_time, "export": cmd_export, "signal": cmd_signal, "race": cmd_race,
            "fetch": cmd_weights_fetch, "verify": cmd_weights_verify, "app": cmd_app}


def parse(argv: list[str]):
    if argv[:1] == ["weights"] and argv[1:2] in (["fetch"], ["verify"]):
        return weights_parser().parse_args(argv[1:])
    if argv[:1] == ["app"]:  # everything after "app" belongs to streamlit
        return argparse.Namespace(command="app", rest=argv[1:])
    return make_parser().parse_args(argv)


def main(argv=None, out=None) -> int:
    out = out or sys.stdout
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parse(argv)
        status = COMMANDS[args.command](args, out)
    except (UsageError, ValueError, OSError) as err:
        # ValueError covers ConfigError and WeightsError
        print(f"inception-explorer: error: {err}", file=sys.stderr)
        return 2
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
