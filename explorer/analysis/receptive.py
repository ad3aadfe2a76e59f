"""Receptive fields over the real graph of a network, per axis (height and width apart).

The rules (``explorer.spec.fields``) are applied by the one walk of the NetSpec
(``explorer.spec.walk``) at every layer and join: every branch starts from its block's input,
the merge takes the hull of the branch fields per axis and notes centres that disagree, pools
keep their ``ceil_mode``, adaptive pools and the classifier see the whole map. Tools that add
layers up in forward-hook order (torchscan; pytorch-receptive-field assumes a sequential network)
count parallel branches as if in series, ignore residual adds and take the first kernel
dimension only, so a 1x7 then 7x1 comes out 13x1 instead of 7x7.

This module keeps what the analysis adds on top: the published fields it is checked against.
"""

from __future__ import annotations

from explorer.spec.fields import (  # noqa: F401  (the analysis' names for the field rules)
    Axis,
    Field,
    Unsupported,
    input_field,
    number,
    sees_whole_input,
    window,
)
from explorer.spec.walk import walk


def fields(spec_or_model, input_size) -> tuple[dict, list[str]]:
    """Every module path's output field (plus ``<block>.concat`` and ``<block>.add`` for the
    joins; ``""`` is the network's output) for an input of ``input_size`` (n or (height,
    width)) of a NetSpec or a model built from one, and notes on joins whose branch centres
    disagree. Raises ``Unsupported`` when parallel paths do not line up."""
    trace = walk(getattr(spec_or_model, "spec", spec_or_model), input_size)
    if not trace.fields:
        raise Unsupported("; ".join(trace.notes) or "no receptive fields")
    return trace.fields, trace.notes


# Published receptive fields of the TF-slim models: (receptive field, effective stride,
# effective padding) at named end-points, from google-research/receptive_field (README and
# receptive_field/RECEPTIVE_FIELD_TABLE.md), the code of Araujo, Norris & Sim, Distill 2019.
# Effective padding = how far the first unit's field reaches past the image's top-left edge,
# i.e. (rf - 1) / 2 - rf_offset. Keys: our variant -> {our row name: figures}.
PUBLISHED_SOURCE = ("google-research/receptive_field, RECEPTIVE_FIELD_TABLE.md (TF-slim models; "
                    "Araujo, Norris & Sim, Distill 2019)")
PUBLISHED = {
    "inception_v3": {
        "stem.conv_1a": (3, 2, 0), "stem.conv_2a": (7, 2, 0), "stem.conv_2b": (11, 2, 2),
        "stem.pool_1": (15, 4, 2), "stem.conv_3b": (15, 4, 2), "stem.conv_4a": (23, 4, 2),
        "stem.pool_2": (31, 8, 2), "inception_a.mixed_5b": (63, 8, 18),
        "inception_a.mixed_5c": (95, 8, 34), "inception_a.mixed_5d": (127, 8, 50),
        "reduction_a.mixed_6a": (159, 16, 58), "inception_b.mixed_6b": (351, 16, 154),
        "inception_b.mixed_6c": (543, 16, 250), "inception_b.mixed_6d": (735, 16, 346),
        "inception_b.mixed_6e": (927, 16, 442), "reduction_b.mixed_7a": (1055, 32, 490),
        "inception_c.mixed_7b": (1183, 32, 554), "inception_c.mixed_7c": (1311, 32, 618)},
    "inception_v4": {
        "stem.conv_1a": (3, 2, 0), "stem.conv_2a": (7, 2, 0), "stem.conv_2b": (11, 2, 2),
        "stem.mixed_3a": (15, 4, 2), "stem.mixed_4a": (47, 4, 14), "stem.mixed_5a": (55, 8, 14),
        **{f"inception_a.{i}": (87 + 32 * i, 8, 30 + 16 * i) for i in range(4)},  # Mixed_5b-e
        "reduction_a.0": (215, 16, 86),
        **{f"inception_b.{i}": (407 + 192 * i, 16, 182 + 96 * i) for i in range(7)},  # 6b-h
        "reduction_b.0": (1687, 32, 806),
        **{f"inception_c.{i}": (1815 + 128 * i, 32, 870 + 64 * i) for i in range(3)}},  # 7b-d
    "inception_resnet_v2": {
        "stem.conv_1a": (3, 2, 0), "stem.conv_2a": (7, 2, 0), "stem.conv_2b": (11, 2, 2),
        "stem.pool_3a": (15, 4, 2), "stem.conv_3b": (15, 4, 2), "stem.conv_4a": (23, 4, 2),
        "stem.pool_5a": (31, 8, 2), "stem.mixed_5b": (63, 8, 18),
        "reduction_a.0": (415, 16, 186),             # Mixed_6a
        "inception_resnet_b.19": (2335, 16, 1146),   # PreAuxLogits
        "reduction_b.0": (2399, 32, 1162),           # Mixed_7a
        "head.conv_7b": (3039, 32, 1482)},           # Conv2d_7b_1x1
    # TF-slim's "inception_v2" is BN-Inception. Its SAME padding is asymmetric where the
    # Caffe model (ours) pads both sides alike, so only field and stride are comparable.
    "bn_inception": {
        "stem.conv1": (7, 2, None), "stem.pool1": (11, 4, None),
        "stem.conv2_reduce": (11, 4, None), "stem.conv2": (19, 4, None),
        "stem.pool2": (27, 8, None), "inception_3.inception_3a": (59, 8, None),
        "inception_3.inception_3b": (91, 8, None), "reduction_3.inception_3c": (123, 16, None),
        "inception_4.inception_4a": (187, 16, None), "inception_4.inception_4b": (251, 16, None),
        "inception_4.inception_4c": (315, 16, None), "inception_4.inception_4d": (379, 16, None),
        "reduction_4.inception_4e": (443, 32, None), "inception_5.inception_5a": (571, 32, None),
        "inception_5.inception_5b": (699, 32, None)},
}


def published(variant: str, layout: str | None, name: str, repeats=None) -> tuple | None:
    """The published (field, stride, padding) of one of our rows, or None. The TF-slim models
    are the released layouts at their reference depth (a row's field depends on the blocks
    before it; the input size does not change it). ``layout`` None: the variant's default."""
    from explorer.variants import VARIANTS

    info = VARIANTS.get(variant)
    if info is None or (layout or info.default_layout) != "released" or repeats is not None:
        return None
    return PUBLISHED.get(variant, {}).get(name)
