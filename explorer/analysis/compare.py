"""Several variants side by side: totals and published accuracy, each variant built with the
options of the comparison that apply to it. Shared by ``compare`` on the command line and the
Compare page; needs no torch when the analyses are in the on-disk cache.
"""

from __future__ import annotations

from explorer.analysis.cached import analysis_dict
from explorer.core.i18n import N_

# What a comparison left out, in English (compare rows are cached and exported): a page says
# it in its language with explorer.core.i18n.again(text, *SKIPPED).
NO_LAYOUT = N_("{variant} has no {layout} layout ({default} shown)")
NO_SCALE = N_("scale: {variant} has no residual blocks")
FIXED_REPEATS = N_("repeats: {variant}'s blocks per stage are fixed")
SPEC_CONFIG = N_("a spec states its own configuration: the options do not apply to it")
OTHER_STAGES = N_("repeats: {variant} has {n} stages of blocks, not the Inception networks' A / B "
                  "/ C (set them on Inspect)")
SKIPPED = (NO_LAYOUT, NO_SCALE, FIXED_REPEATS, OTHER_STAGES, SPEC_CONFIG)


def compare_config(variant: str, **options) -> tuple[dict, list[str]]:
    """The build options of a comparison that apply to ``variant``, and what was left out and
    why: layout where the variant has it, scale only for residual networks, repeats only where
    blocks per stage are configurable (three stages). Width and classes apply to all."""
    from explorer.variants import get_variant

    info = get_variant(variant)
    config, skipped = {}, []
    layout = options.pop("layout", None)
    if layout not in (None, "released"):
        if layout in info.layouts or layout in info.aliases:
            config["layout"] = layout
        else:
            skipped.append(NO_LAYOUT.format(variant=variant, layout=layout,
                                            default=info.default_layout))
    default_layout = info.layouts[info.default_layout]
    lay = info.layouts.get(info.aliases.get(config.get("layout"), config.get("layout")),
                           default_layout)
    for key, value in options.items():
        if value is None:
            continue
        if key == "scale" and lay.scale is None:
            skipped.append(NO_SCALE.format(variant=variant))
        elif key == "repeats" and lay.repeats is None:
            skipped.append(FIXED_REPEATS.format(variant=variant))
        elif key == "repeats" and len(value) != len(lay.repeats):  # a ResNet's four stages
            skipped.append(OTHER_STAGES.format(variant=variant, n=len(lay.repeats)))
        elif key == "repeats":  # None for a stage: this variant's reference count there
            config[key] = tuple(ref if v is None else v for v, ref in zip(value, lay.repeats))
        else:
            config[key] = value
    return config, skipped


def compare_rows(variants, input_size=None, **options) -> list[dict]:
    """Totals and published accuracy of several variants (names, or NetSpecs taken as they
    are), each built with the ``options`` (layout, width, num_classes, scale, repeats) that
    apply to it (``compare_config``)."""
    from explorer.analysis.published import best_published

    rows = []
    for name in variants:
        if not isinstance(name, str):  # a NetSpec (a spec file): as it is, no published figure
            from explorer.analysis.rows import analyze
            result = analyze(name, input_size=input_size).to_dict()
            config, pub = {}, None
            skipped = [SPEC_CONFIG] if any(v is not None for v in options.values()) else []
            name = name.variant
        else:
            config, skipped = compare_config(name, **options)
            result = analysis_dict(name, input_size, "block", **config)
            pub = best_published(name)
        rows.append({"variant": name, "layout": result["layout"],
                     "input_size": result["input_size"], "total_params": result["total_params"],
                     "total_bn_params": result["total_bn_params"],
                     "total_macs": result["total_macs"], "blocks": len(result["rows"]),
                     "activation_bytes": result["total_activation_bytes"],
                     "top1": pub.top1 if pub else None, "top5": pub.top5 if pub else None,
                     "accuracy_source": pub.source if pub else "none published",
                     "config": result["config"], "build": config, "skipped": skipped})
    return rows


# The columns of a comparison's table, as the Compare page's downloads and ``compare --csv``
# write them (raw numbers, in units the name says). ``peak_memory_bytes``: the memory guard's
# estimate of one forward pass (batch 1, float32), where the caller added it.
TABLE_COLUMNS = ("variant", "layout", "input_size", "total_params", "total_bn_params",
                 "total_macs", "blocks", "activation_bytes", "peak_memory_bytes", "top1", "top5",
                 "accuracy_source", "not_applied")


def compare_table(rows: list[dict]) -> list[dict]:
    """``compare_rows`` (with ``peak_memory_bytes`` where known) as flat records, one per
    network, in ``TABLE_COLUMNS``."""
    return [{**{c: r.get(c) for c in TABLE_COLUMNS[:-1]}, "not_applied": "; ".join(r["skipped"])}
            for r in rows]


def compare_csv(rows: list[dict]) -> str:
    """``compare_table`` as CSV text (a header line, then one line per network)."""
    import csv
    import io
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=TABLE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(compare_table(rows))
    return out.getvalue()
