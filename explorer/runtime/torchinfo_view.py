"""torchinfo's own summary of the same network ``analyze`` measures, for users who know it.

The model is built on the "meta" device (no memory, no initialisation) and ``device="meta"`` is
passed explicitly: torchinfo 1.8 moves a CPU model to CUDA when a GPU exists. torchinfo shows
no rows for functional ops (pools, concat, ReLU) and counts BatchNorm's multiply-adds as well;
its parameter totals are the same as ours (tests/test_torchinfo.py).
"""

from __future__ import annotations

from functools import lru_cache

import torch

from explorer.analysis.rows import DEPTHS
from explorer.core.keys import freeze, thaw
from explorer.runtime.modules import materialize
from explorer.variants import ConfigError, describe_layout, resolve

# our depths as torchinfo's module-nesting depths: model.stage (1), .block (2), everything below
TORCHINFO_DEPTH = {"stage": 1, "block": 2, "layer": 8}
COLUMNS = ("output_size", "num_params", "mult_adds")


def torchinfo_summary(variant: str, *, input_size: int | None = None, depth: str = "block",
                      **config):
    """``torchinfo.summary`` (its ModelStatistics) of ``variant`` built with ``config``."""
    import torchinfo

    if depth not in DEPTHS:
        raise ConfigError(f"depth must be one of {', '.join(DEPTHS)}, got {depth!r}")
    layout = config.pop("layout", None)  # None: the variant's own default
    info, lay, cfg = resolve(variant, layout, input_size=input_size, **config)
    size = input_size or info.native_input_size
    with torch.device("meta"):
        model = materialize(describe_layout(info, lay, cfg)).eval()
    return torchinfo.summary(model, input_size=(1, 3, size, size), device="meta",
                             depth=TORCHINFO_DEPTH[depth], col_names=COLUMNS, col_width=16,
                             verbose=0,
                             row_settings=("var_names",))


def torchinfo_text(variant: str, *, input_size: int | None = None, depth: str = "block",
                   **config) -> str:
    """The summary as torchinfo prints it (cached like ``analyze``: types are part of the key)."""
    return _text(variant, input_size, depth, freeze(config))


@lru_cache(maxsize=64, typed=True)
def _text(variant: str, input_size, depth: str, frozen: tuple) -> str:
    config = thaw(frozen)
    return str(torchinfo_summary(variant, input_size=input_size, depth=depth, **config))
