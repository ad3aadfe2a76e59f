"""The Lab: the v4 paper's training claims, run here.

- ``signal``: activations and gradients per block of a freshly initialised network;
- ``race``: networks trained side by side on real digits, deterministic and cached;
- ``get_queue``: one race at a time per server, the others in line.
"""

from explorer.lab.config import LAB_VARIANTS, LabConfig
from explorer.lab.signal import measure, signal
from explorer.lab.training import DEFAULT_CONFIGS, RECIPES, cached_race, make_request, race, summarize

__all__ = ["DEFAULT_CONFIGS", "LAB_VARIANTS", "LabConfig", "RECIPES", "cached_race",
           "make_request", "measure", "race", "signal", "summarize"]
