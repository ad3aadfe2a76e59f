"""A variant's layouts (paper or released) and how a build is configured (bounds checked)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Protocol

from explorer.core.i18n import _
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
    """Raise ConfigError naming the problem and what is allowed (in the run's language: English
    outside a page)."""
    name, layout_name = info.name, _(layout.name)
    if not isinstance(cfg.num_classes, int) or isinstance(cfg.num_classes, bool) \
            or not 1 <= cfg.num_classes <= MAX_CLASSES:
        raise ConfigError(_("num_classes must be an integer from 1 to {most}, got {got}").format(
            most=MAX_CLASSES, got=repr(cfg.num_classes)))
    if not isinstance(cfg.aux_logits, bool):
        raise ConfigError(_("aux_logits must be True or False, got {got}").format(
            got=repr(cfg.aux_logits)))
    if cfg.aux_logits and not layout.has_aux:
        raise ConfigError(_("{variant} ({layout} layout) has no auxiliary head; "
                            "use aux_logits=False").format(variant=name, layout=layout_name))
    if cfg.dropout is not None and not (isinstance(cfg.dropout, (int, float))
                                        and 0.0 <= cfg.dropout < 1.0):
        raise ConfigError(_("dropout must be a probability in [0, 1), got {got}").format(
            got=repr(cfg.dropout)))
    if not isinstance(cfg.width, (int, float)) or not 0.0 < cfg.width <= MAX_WIDTH:
        raise ConfigError(_("width must be a number in (0, {most}] (1.0 = the reference "
                            "widths), got {got}").format(most=MAX_WIDTH, got=repr(cfg.width)))
    if cfg.scale is not None:
        if layout.scale is None:
            raise ConfigError(_("scale applies to residual blocks; {variant} has none. "
                                "It is offered by inception_resnet_v1 and inception_resnet_v2")
                              .format(variant=name))
        scales = cfg.scale if isinstance(cfg.scale, (tuple, list)) else (cfg.scale,)
        if len(scales) not in (1, 3) or not all(
                isinstance(s, (int, float)) and 0.0 < s <= 1.0 for s in scales):
            raise ConfigError(_("scale must be a number in (0, 1] (the papers use 0.1-0.3) or "
                                "three of them for the A, B and C blocks, got {got}").format(
                                    got=repr(cfg.scale)))
    if cfg.repeats is not None:
        if layout.repeats is None:
            raise ConfigError(_("repeats is not offered for {variant}: its blocks differ one "
                                "from the next. It is offered by inception_v4, "
                                "inception_resnet_v1 and inception_resnet_v2").format(variant=name))
        reps = tuple(cfg.repeats) if isinstance(cfg.repeats, (tuple, list)) else None
        if reps is None or len(reps) != len(layout.repeats) or not all(
                isinstance(r, int) and not isinstance(r, bool) and 1 <= r <= MAX_REPEATS
                for r in reps):
            stages = ", ".join(layout.repeat_stages)
            raise ConfigError(_("repeats must be {n} integers from 1 to {most}, blocks per stage "
                                "({stages}); the reference is {reference}, got {got}").format(
                                    n=len(layout.repeats), most=MAX_REPEATS, stages=stages,
                                    reference=layout.repeats, got=repr(cfg.repeats)))
    if cfg.input_size is not None:
        minimum = min_input_size(layout, cfg.aux_logits)
        if not isinstance(cfg.input_size, int) or isinstance(cfg.input_size, bool):
            raise ConfigError(_("input_size must be an integer, got {got}").format(
                got=repr(cfg.input_size)))
        if cfg.input_size < minimum:
            if cfg.aux_logits and layout.min_input_size_aux:
                text = _("input_size {size} is below {variant}'s minimum of {minimum}x{minimum} "
                         "with the auxiliary head ({layout} layout); its native size is {native}")
            else:
                text = _("input_size {size} is below {variant}'s minimum of {minimum}x{minimum} "
                         "({layout} layout); its native size is {native}")
            raise ConfigError(text.format(size=cfg.input_size, variant=name, minimum=minimum,
                                          layout=layout_name, native=info.native_input_size))
        if cfg.input_size > MAX_INPUT_SIZE:
            raise ConfigError(_("input_size {size} is above the limit of {most}; its native size "
                                "is {native}").format(size=cfg.input_size, most=MAX_INPUT_SIZE,
                                                      native=info.native_input_size))
        if not fits(layout, cfg, cfg.input_size):
            near = nearest_fitting_sizes(layout, cfg, cfg.input_size)
            raise ConfigError(_(
                "input_size {size} does not fit {variant} ({layout} layout): the feature maps of "
                "its parallel branches would not line up (or its auxiliary head needs another "
                "size). Nearest sizes that fit: {sizes}; its native size is {native}").format(
                    size=cfg.input_size, variant=name, layout=layout_name,
                    sizes=", ".join(map(str, near)) or _("none nearby"),
                    native=info.native_input_size))


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
