"""Several variants side by side: totals and published accuracy, each variant built with the
options of the comparison that apply to it. Shared by ``compare`` on the command line and the
Compare page; needs no torch when the analyses are in the on-disk cache.
"""

from __future__ import annotations

from explorer.analysis.cached import analysis_dict


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
            skipped.append(f"{variant} has no {layout} layout ({info.default_layout} shown)")
    default_layout = info.layouts[info.default_layout]
    lay = info.layouts.get(info.aliases.get(config.get("layout"), config.get("layout")),
                           default_layout)
    for key, value in options.items():
        if value is None:
            continue
        if key == "scale" and lay.scale is None:
            skipped.append(f"scale: {variant} has no residual blocks")
        elif key == "repeats" and lay.repeats is None:
            skipped.append(f"repeats: {variant}'s blocks per stage are fixed")
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
            skipped = ["a spec states its own configuration: the options do not apply to it"
                       ] if any(v is not None for v in options.values()) else []
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
