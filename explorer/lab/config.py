"""What the Lab builds: a variant in its paper layout, small enough to run here, 10 classes."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from explorer.runtime.build import build
from explorer.variants import ConfigError, resolve
from explorer.variants.config import min_input_size, scale_per_stage

LAB_VARIANTS = ("inception_v3", "inception_v4", "inception_resnet_v1", "inception_resnet_v2")


@dataclass(frozen=True)
class LabConfig:
    """One network of the Lab. ``repeats``/``scale`` None mean the paper's reference values;
    ``input_size`` None means the network's minimum (75 px for all four)."""

    variant: str
    width: float = 0.25
    repeats: tuple[int, ...] | None = None
    scale: float | None = None
    input_size: int | None = None
    layout: str = "paper"
    design: str | None = None      # a designed block (``analysis.design.encode``'s value) ...
    design_at: str | None = None   # ... placed at this block or stage (the Design page's race)

    def resolved(self) -> LabConfig:
        """Validated, with every default made explicit (so equal networks get equal keys)."""
        if self.variant not in LAB_VARIANTS:
            raise ConfigError(f"the Lab trains {', '.join(LAB_VARIANTS)}; got {self.variant!r}")
        repeats = tuple(self.repeats) if isinstance(self.repeats, (list, tuple)) else self.repeats
        options = {"width": self.width, "repeats": repeats, "scale": self.scale}
        _, lay, _ = resolve(self.variant, self.layout, num_classes=10,
                            **{k: v for k, v in options.items() if v is not None})
        size = self.input_size if self.input_size is not None else min_input_size(lay)
        _, lay, cfg = resolve(self.variant, self.layout, num_classes=10, input_size=size,
                              **{k: v for k, v in options.items() if v is not None})
        scale = scale_per_stage(lay, cfg) if lay.scale is not None else None
        out = LabConfig(self.variant, float(cfg.width), tuple(cfg.repeats or lay.repeats or ()) or None,
                        None if scale is None else (scale[0] if len(set(scale)) == 1 else scale),
                        size, lay.name, self.design, self.design_at)
        if self.design is not None or self.design_at is not None:
            lab_spec(out)  # the design must run there: ShapeError names its branch and layer
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        d["repeats"] = list(d["repeats"]) if d["repeats"] else None
        d["scale"] = list(d["scale"]) if isinstance(d["scale"], tuple) else d["scale"]
        for key in ("design", "design_at"):  # absent unless designed: earlier races' keys hold
            if d[key] is None:
                del d[key]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> LabConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown option(s) {', '.join(sorted(unknown))}; "
                              f"the options are: {', '.join(sorted(known))}")
        d = dict(d)
        for key in ("repeats", "scale"):
            if isinstance(d.get(key), list):
                d[key] = tuple(d[key])
        return cls(**d)

    def label(self) -> str:
        designed = f", designed {self.design_at}" if self.design is not None else ""
        if self.scale is None:
            return f"{self.variant} (designed {self.design_at})" if designed else self.variant
        scales = self.scale if isinstance(self.scale, tuple) else (self.scale,)
        return f"{self.variant} (scale {'/'.join(f'{s:g}' for s in scales)}{designed})"


def lab_replace(cfg: LabConfig) -> dict | None:
    """``{design_at: block}`` for a designed network (the block's channels scaled by the Lab's
    width, as the variants' builders scale every block), else None."""
    if cfg.design is None and cfg.design_at is None:
        return None
    if not (isinstance(cfg.design, str) and isinstance(cfg.design_at, str)):
        raise ConfigError("a designed network needs both design (the block) and design_at "
                          "(the block or stage it replaces)")
    from explorer.analysis.design import decode, scaled
    return {cfg.design_at: scaled(decode(cfg.design), cfg.width)}


def lab_spec(cfg: LabConfig):
    """The NetSpec the Lab builds for ``cfg`` (resolved), its design in place."""
    from explorer.spec.replace import replaced
    from explorer.variants import describe

    spec = describe(cfg.variant, cfg.layout, num_classes=10, width=cfg.width,
                    input_size=cfg.input_size,
                    **{k: v for k, v in (("repeats", cfg.repeats), ("scale", cfg.scale))
                       if v is not None})
    return replaced(spec, lab_replace(cfg))


def build_lab_model(cfg: LabConfig, generator: torch.Generator, device="cpu",
                    dropout: float = 0.0) -> nn.Module:
    """Build ``cfg`` (resolved) with weights drawn from ``generator`` only.

    PyTorch's default initialisation (kaiming-uniform with a = sqrt(5), biases uniform in
    +-1/sqrt(fan_in), batch norm at 1 and 0), reproduced with a private generator: the global
    random state is shared by every thread of a server, so it cannot make a run repeatable.
    """
    with torch.device("meta"):
        model = build(cfg.variant, layout=cfg.layout, num_classes=10, device="meta",
                      width=cfg.width, repeats=cfg.repeats, dropout=dropout,
                      replace=lab_replace(cfg),
                      **({"scale": cfg.scale} if cfg.scale is not None else {}))
    model = model.to_empty(device="cpu")
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
                if m.bias is not None:
                    fan_in = m.weight[0].numel()
                    bound = 1 / math.sqrt(fan_in)
                    nn.init.uniform_(m.bias, -bound, bound, generator=generator)
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_parameters()
    return model.to(device)


def blocks(model: nn.Module):
    """(name, module) of every block in network order: the children of each stage, then the
    classifier head."""
    for stage_name in model.stage_names:
        for block_name, block in getattr(model, stage_name).named_children():
            yield f"{stage_name}.{block_name}", block
    yield "head", model.head
