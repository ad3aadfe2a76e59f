"""How a checkpoint's images were prepared (``Preprocess``): plain facts, importable without
PIL, so that a variant's weights entries cost the command line nothing (``explorer.core.images``
applies them)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from explorer.core.i18n import N_, _

INTERPOLATION_NAMES = ("bilinear", "bicubic")
DESCRIBE = N_("resize {resize} ({interpolation}), centre crop {crop}{scale}, mean/std {mean}/{std}")


@dataclass(frozen=True)
class Preprocess:
    """How a checkpoint's images were prepared: shorter side resized, centre crop, normalised.

    ``mean`` and ``std`` are per channel in ``channel_order`` and in units of ``value_range``
    (pixels / 255 * value_range): ImageNet's (0.485, ...) for value_range 1, Caffe's BGR means
    (104, 117, 128) with std 1 for value_range 255.
    """

    input_size: int                 # side of the square centre crop fed to the network
    resize_size: int                # the shorter side is resized to this before the crop
    interpolation: str = "bilinear"  # "bilinear" | "bicubic"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    channel_order: str = "RGB"      # "BGR" for Cadene's BN-Inception
    value_range: float = 1.0        # 1.0: pixels / 255 then normalise; 255.0: raw 0..255 (Cadene)

    def __post_init__(self):
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))
        if not (isinstance(self.input_size, int) and self.input_size >= 1):
            raise ValueError(f"input_size must be a positive integer, got {self.input_size!r}")
        if not (isinstance(self.resize_size, int) and self.resize_size >= self.input_size):
            raise ValueError(f"resize_size must be an integer >= input_size ({self.input_size}), "
                             f"got {self.resize_size!r}")
        if self.interpolation not in INTERPOLATION_NAMES:
            raise ValueError(f"interpolation must be one of {sorted(INTERPOLATION_NAMES)}, got "
                             f"{self.interpolation!r}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("mean and std need three values, one per channel")
        if any(not (s > 0) for s in self.std):
            raise ValueError(f"std must be positive, got {self.std}")
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be 'RGB' or 'BGR', got {self.channel_order!r}")
        if not self.value_range > 0:
            raise ValueError(f"value_range must be positive, got {self.value_range!r}")

    @classmethod
    def from_crop_pct(cls, input_size: int, crop_pct: float, **kw) -> Preprocess:
        """timm's convention: the shorter side is resized to floor(input_size / crop_pct)."""
        if not 0 < crop_pct <= 1:
            raise ValueError(f"crop_pct must be in (0, 1], got {crop_pct!r}")
        return cls(input_size, math.floor(input_size / crop_pct), **kw)

    @property
    def crop_pct(self) -> float:
        return self.input_size / self.resize_size

    def describe(self) -> str:
        """One line for the UI, in the run's language."""
        def nums(values):
            return "(" + ", ".join(f"{v:g}" for v in values) + ")"
        scale = "" if self.value_range == 1 else f", {self.channel_order} 0-{self.value_range:g}"
        if not scale and self.channel_order != "RGB":
            scale = f", {self.channel_order}"
        return _(DESCRIBE).format(resize=self.resize_size, interpolation=self.interpolation,
                                  crop=self.input_size, scale=scale, mean=nums(self.mean),
                                  std=nums(self.std))
