"""A variant's layouts (paper or released) and how a build is configured (bounds checked)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Protocol

from explorer.spec.errors import ConfigError, ShapeError
from explorer.spec.walk import walk

MAX_INPUT_SIZE = 2048
MAX_WIDTH = 4.0
MAX_REPEATS = 64
MAX_CLASSES = 100_000


@dataclass(frozen=True)
class Config:
    """Everything a builder needs. ``None`` means "the variant's reference value"."""

    num_classes: int = 1000
    aux_logits: bool = False
    dropout: float | None = None
    width: float = 1.0
    scale: float | tuple[float, float, float] | None = None
    repeats: tuple[int, ...] | None = None
    input_size: int | None = None


@dataclass(frozen=True, eq=False)  # hashed by identity: one object per layout
class Layout:
    """One way of laying out a variant: the paper's (``paper=True``), or the one its public
    checkpoints use (``paper=False``, named "released")."""

    paper: bool
    describe: Callable[[Config], object]  # Config -> NetSpec (the variant's own builder)
    min_input_size: int
    min_input_size_aux: int | None = None  # aux heads may need larger feature maps
    notes: tuple[str, ...] = ()
    # checkpoint format ("torchvision", "timm", ...) -> its key map's rules, given the Config
    checkpoint_formats: dict[str, Callable[[Config], list]] = field(default_factory=dict)
    repeats: tuple[int, ...] | None = None  # reference blocks per repeatable stage
    repeat_stages: tuple[str, ...] = ()
    scale: tuple[float, float, float] | None = None  # reference residual scales, A/B/C
    dropout: float = 0.0  # reference dropout before the classifier
    has_aux: bool = False

    @property
    def name(self) -> str:
        return "paper" if self.paper else "released"


class Named(Protocol):
    """What the checks read of a variant's facts (``VariantInfo`` has it; facts.py imports this
    module, so this one names no class of it)."""

    name: str
    native_input_size: int


def check_config(info: Named, layout: Layout, cfg: Config) -> None:
    """Raise ConfigError naming the problem and what is allowed."""
    name = info.name
    if not isinstance(cfg.num_classes, int) or isinstance(cfg.num_classes, bool) \
            or not 1 <= cfg.num_classes <= MAX_CLASSES:
        raise ConfigError(f"num_classes must be an integer from 1 to {MAX_CLASSES}, "
                          f"got {cfg.num_classes!r}")
    if not isinstance(cfg.aux_logits, bool):
        raise ConfigError(f"aux_logits must be True or False, got {cfg.aux_logits!r}")
    if cfg.aux_logits and not layout.has_aux:
        raise ConfigError(f"{name} ({layout.name} layout) has no auxiliary head; "
                          "use aux_logits=False")
    if cfg.dropout is not None and not (isinstance(cfg.dropout, (int, float))
                                        and 0.0 <= cfg.dropout < 1.0):
        raise ConfigError(f"dropout must be a probability in [0, 1), got {cfg.dropout!r}")
    if not isinstance(cfg.width, (int, float)) or not 0.0 < cfg.width <= MAX_WIDTH:
        raise ConfigError(f"width must be a number in (0, {MAX_WIDTH}] (1.0 = the reference "
                          f"widths), got {cfg.width!r}")
    if cfg.scale is not None:
        if layout.scale is None:
            raise ConfigError(f"scale applies to residual blocks; {name} has none. "
                              "It is offered by inception_resnet_v1 and inception_resnet_v2")
        scales = cfg.scale if isinstance(cfg.scale, (tuple, list)) else (cfg.scale,)
        if len(scales) not in (1, 3) or not all(
                isinstance(s, (int, float)) and 0.0 < s <= 1.0 for s in scales):
            raise ConfigError("scale must be a number in (0, 1] (the papers use 0.1-0.3) or three "
                              f"of them for the A, B and C blocks, got {cfg.scale!r}")
    if cfg.repeats is not None:
        if layout.repeats is None:
            raise ConfigError(f"repeats is not offered for {name}: its blocks differ one from the "
                              "next. It is offered by inception_v4, inception_resnet_v1 and "
                              "inception_resnet_v2")
        reps = tuple(cfg.repeats) if isinstance(cfg.repeats, (tuple, list)) else None
        if reps is None or len(reps) != len(layout.repeats) or not all(
                isinstance(r, int) and not isinstance(r, bool) and 1 <= r <= MAX_REPEATS
                for r in reps):
            stages = ", ".join(layout.repeat_stages)
            raise ConfigError(f"repeats must be {len(layout.repeats)} integers from 1 to "
                              f"{MAX_REPEATS}, blocks per stage ({stages}); the reference is "
                              f"{layout.repeats}, got {cfg.repeats!r}")
    if cfg.input_size is not None:
        minimum = min_input_size(layout, cfg.aux_logits)
        if not isinstance(cfg.input_size, int) or isinstance(cfg.input_size, bool):
            raise ConfigError(f"input_size must be an integer, got {cfg.input_size!r}")
        if cfg.input_size < minimum:
            extra = " with the auxiliary head" if cfg.aux_logits and layout.min_input_size_aux else ""
            raise ConfigError(f"input_size {cfg.input_size} is below {name}'s minimum of "
                              f"{minimum}x{minimum}{extra} ({layout.name} layout); "
                              f"its native size is {info.native_input_size}")
        if cfg.input_size > MAX_INPUT_SIZE:
            raise ConfigError(f"input_size {cfg.input_size} is above the limit of "
                              f"{MAX_INPUT_SIZE}; its native size is {info.native_input_size}")
        if not fits(layout, cfg, cfg.input_size):
            near = nearest_fitting_sizes(layout, cfg, cfg.input_size)
            raise ConfigError(
                f"input_size {cfg.input_size} does not fit {name} ({layout.name} layout): the "
                "feature maps of its parallel branches would not line up (or its auxiliary head "
                "needs another size). Nearest sizes that fit: "
                + (", ".join(map(str, near)) or "none nearby") +
                f"; its native size is {info.native_input_size}")


def min_input_size(layout: Layout, aux_logits: bool = False) -> int:
    if aux_logits and layout.min_input_size_aux:
        return max(layout.min_input_size, layout.min_input_size_aux)
    return layout.min_input_size


def scale_per_stage(layout: Layout, cfg: Config) -> tuple[float, float, float]:
    """The residual scale of the A, B and C blocks of a build (the layout's unless set)."""
    if cfg.scale is None:
        return layout.scale
    if isinstance(cfg.scale, (tuple, list)):
        return tuple(float(s) for s in cfg.scale) if len(cfg.scale) == 3 else (float(cfg.scale[0]),) * 3
    return (float(cfg.scale),) * 3


@lru_cache(maxsize=64)
def _described(layout: Layout, cfg: Config):
    """The layout's NetSpec for ``cfg`` (cached: specs are immutable)."""
    return layout.describe(cfg)


def layout_state(layout: Layout, cfg: Config, native_input_size: int) -> dict:
    """The state-dict names and shapes of ``layout`` built with ``cfg`` (from the spec's walk at
    ``cfg.input_size`` or the native size, as ``build`` makes it: no torch, no build)."""
    return walk(_described(layout, cfg), cfg.input_size or native_input_size,
                fields=False).state_shapes()


def fits(layout: Layout, cfg: Config, size: int) -> bool:
    """Whether a size x size input flows through the network, aux heads included (the spec's
    walk: no forward pass)."""
    # width, classes and dropout never change spatial shapes: share one spec across them
    spec = _described(layout, replace(cfg, input_size=None, width=1.0, dropout=None,
                                      num_classes=1000))
    try:
        walk(spec, size, fields=False)
    except ShapeError:
        return False
    return True


def nearest_fitting_sizes(layout: Layout, cfg: Config, size: int, span: int = 40) -> list[int]:
    below = next((s for s in range(size - 1, max(size - span, 0), -1) if fits(layout, cfg, s)), None)
    above = next((s for s in range(size + 1, min(size + span, MAX_INPUT_SIZE + 1))
                  if fits(layout, cfg, s)), None)
    return [s for s in (below, above) if s is not None]
