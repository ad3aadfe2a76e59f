"""Notes that the pages repeat, marked for translation. Their English is the analysis's own
(``explorer.analysis.rows``: exports keep it); tests/test_i18n.py checks the two agree."""

from explorer.core.i18n import N_

MACS_NOTE = N_("MACs: multiply-accumulates of conv and linear layers (1 MAC = 2 FLOPs)")
PARAMS_NOTE = N_("params: every learnable tensor, BatchNorm's scale and shift included "
                 "(bn_params: that BatchNorm share)")
