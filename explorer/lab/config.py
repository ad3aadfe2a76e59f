"""What the Lab builds: a variant in its paper layout, small enough to run here, 10 classes."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from explorer.core.i18n import _
from explorer.runtime.build import build
from explorer.variants import ConfigError, resolve
from explorer.variants.config import min_input_size, scale_per_stage

LAB_VARIANTS = ("inception_v3", "inception_v4", "inception_resnet_v1", "inception_resnet_v2",
                "resnet50", "resnetv2_50")
LAB_INPUT_SIZE = 75  # the Lab's digits: the Inception networks' minimum, and the ResNets' size


def network_macs(variant: str, width: float, input_size: int, layout: str = "paper") -> int:
    """MACs of one image through ``variant`` as the Lab builds it (10 classes)."""
    from explorer.spec.walk import walk
    from explorer.variants import describe

    return walk(describe(variant, layout, num_classes=10, width=width, input_size=input_size),
                fields=False).root.macs


def same_cost_width(variant: str, reference: str, input_size: int = LAB_INPUT_SIZE) -> float:
    """The width at which ``variant`` costs what ``reference`` ("VARIANT@WIDTH", e.g.
    "inception_resnet_v1@0.25") costs, in MACs per image at ``input_size`` (to 3 decimals: the
    closest the rounding of channel counts allows)."""
    name, _at, text = reference.partition("@")
    try:
        ref_width = float(text)
    except ValueError:
        raise ConfigError(_("a cost to match is VARIANT@WIDTH, e.g. inception_resnet_v1@0.25; got "
                            "{got}").format(got=repr(reference))) from None
    if name not in LAB_VARIANTS:
        raise ConfigError(_("the Lab matches the cost of {variants}; got {got}").format(
            variants=", ".join(LAB_VARIANTS), got=repr(name)))
    target = network_macs(name, ref_width, input_size)
    lo, hi = 0.02, 4.0
    if network_macs(variant, hi, input_size) < target:
        raise ConfigError(_("{variant} cannot cost as much as {other} at {size} px (widths up to "
                            "4)").format(variant=variant, other=reference, size=input_size))
    for _step in range(20):  # MACs grow with the width (about as its square)
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if network_macs(variant, mid, input_size) < target else (lo, mid)
    near = {round(w, 3) for w in (lo, hi, lo - 0.001, hi + 0.001) if w > 0}
    return min(sorted(near), key=lambda w: abs(network_macs(variant, w, input_size) - target))


@dataclass(frozen=True)
class LabConfig:
    """One network of the Lab. ``repeats``/``scale`` None mean the paper's reference values;
    ``input_size`` None means the Lab's 75 px (the Inception networks' minimum). ``aux``: train with
    the Lab's auxiliary head (``LabAuxHead``); ``label_smoothing``: the epsilon of the loss's
    label smoothing, None = the recipe's."""

    variant: str
    width: float = 0.25
    repeats: tuple[int, ...] | None = None
    scale: float | None = None
    input_size: int | None = None
    layout: str = "paper"
    design: str | None = None      # a designed block (``analysis.design.encode``'s value) ...
    design_at: str | None = None   # ... placed at this block or stage (the Design page's race)
    aux: bool = False
    label_smoothing: float | None = None
    same_cost: str | None = None   # "VARIANT@WIDTH": the width is set so MACs match that one's

    def resolved(self) -> LabConfig:
        """Validated, with every default made explicit (so equal networks get equal keys)."""
        if self.variant not in LAB_VARIANTS:
            raise ConfigError(_("the Lab trains {variants}; got {got}").format(
                variants=", ".join(LAB_VARIANTS), got=repr(self.variant)))
        repeats = tuple(self.repeats) if isinstance(self.repeats, (list, tuple)) else self.repeats
        options = {"width": self.width, "repeats": repeats, "scale": self.scale}
        _info, lay, _cfg = resolve(self.variant, self.layout, num_classes=10,
                                   **{k: v for k, v in options.items() if v is not None})
        size = self.input_size if self.input_size is not None else max(min_input_size(lay),
                                                                        LAB_INPUT_SIZE)
        if self.same_cost is not None:
            options["width"] = same_cost_width(self.variant, self.same_cost, size)
        _info, lay, cfg = resolve(self.variant, self.layout, num_classes=10, input_size=size,
                                  **{k: v for k, v in options.items() if v is not None})
        scale = scale_per_stage(lay, cfg) if lay.scale is not None else None
        if not isinstance(self.aux, bool):
            raise ConfigError(_("aux must be true or false, got {got}").format(got=repr(self.aux)))
        eps = self.label_smoothing
        if eps is not None and (isinstance(eps, bool) or not isinstance(eps, (int, float))
                                or not 0.0 <= eps < 1.0):
            raise ConfigError(_("label smoothing epsilon must be a number in [0, 1) (the papers: "
                                "0.1; 0 = off), got {got}").format(got=repr(eps)))
        out = LabConfig(self.variant, float(cfg.width), tuple(cfg.repeats or lay.repeats or ()) or None,
                        None if scale is None else (scale[0] if len(set(scale)) == 1 else scale),
                        size, lay.name, self.design, self.design_at, self.aux,
                        None if eps is None else float(eps), self.same_cost)
        if self.design is not None or self.design_at is not None:
            lab_spec(out)  # the design must run there: ShapeError names its branch and layer
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        # left out at their defaults: the keys of runs made before these options stay valid
        if not d["aux"]:
            del d["aux"]
        if d["label_smoothing"] is None:
            del d["label_smoothing"]
        d["repeats"] = list(d["repeats"]) if d["repeats"] else None
        d["scale"] = list(d["scale"]) if isinstance(d["scale"], tuple) else d["scale"]
        for key in ("design", "design_at", "same_cost"):  # absent unless set: earlier keys hold
            if d[key] is None:
                del d[key]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> LabConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ConfigError(_("unknown option(s) {unknown}; the options are: {options}").format(
                unknown=", ".join(sorted(unknown)), options=", ".join(sorted(known))))
        d = dict(d)
        for key in ("repeats", "scale"):
            if isinstance(d.get(key), list):
                d[key] = tuple(d[key])
        return cls(**d)

    def label(self) -> str:
        options = []
        if self.scale is not None:
            scales = self.scale if isinstance(self.scale, tuple) else (self.scale,)
            options.append(f"scale {'/'.join(f'{s:g}' for s in scales)}")
        if self.design is not None:
            options.append(f"designed {self.design_at}")
        if self.aux:
            options.append("aux head")
        if self.label_smoothing is not None:
            options.append(f"label smoothing {self.label_smoothing:g}")
        if self.same_cost is not None:
            options.append(f"width {self.width:g}: the MACs of {self.same_cost.replace('@', ' at ')}")
        return self.variant + (f" ({', '.join(options)})" if options else "")


AUX_WEIGHT = 0.3  # the auxiliary loss's weight (GoogLeNet's; the Learn page's formula)


class LabAuxHead(nn.Module):
    """A network with an auxiliary classifier on its 17x17-grid stage's output (where
    Inception-v3's sits), for the Lab's 75 px inputs: global average pool, a 1x1 "conv" to 128
    (BatchNorm, ReLU: BN-auxiliary), a linear layer to the classes. The papers' v3 head (a 5x5
    pool, a 5x5 conv) needs that grid at 17x17, i.e. 299 px inputs: 15x slower to train here.
    In training mode the forward returns (logits, auxiliary logits); in eval mode the logits."""

    def __init__(self, net: nn.Module, tap: str, channels: int, num_classes: int = 10):
        super().__init__()
        self.net, self.tap = net, tap
        self.aux = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 128),
                                 nn.BatchNorm1d(128), nn.ReLU(inplace=True),
                                 nn.Linear(128, num_classes))

    def forward(self, x):
        if not self.training:
            return self.net(x)
        aux = None
        for name in self.net.stage_names:
            x = getattr(self.net, name)(x)
            if name == self.tap:
                aux = self.aux(x)
        return self.net.head(x), aux


def aux_tap(model: nn.Module) -> str:
    """The stage the Lab's auxiliary head reads: the 17x17-grid Inception stage (a ResNet's
    conv4_x, on the same 1/16 grid)."""
    return next(n for n in model.stage_names if n == "conv4_x" or (
        n.endswith("_b") and not n.startswith("reduction")))


def lab_replace(cfg: LabConfig) -> dict | None:
    """``{design_at: block}`` for a designed network (the block's channels scaled by the Lab's
    width, as the variants' builders scale every block), else None."""
    if cfg.design is None and cfg.design_at is None:
        return None
    if not (isinstance(cfg.design, str) and isinstance(cfg.design_at, str)):
        raise ConfigError(_("a designed network needs both design (the block) and design_at "
                            "(the block or stage it replaces)"))
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
        if cfg.aux:
            tap = aux_tap(model)
            x = torch.empty(1, 3, cfg.input_size, cfg.input_size)
            for name in model.stage_names[:model.stage_names.index(tap) + 1]:
                x = getattr(model, name)(x)
            model = LabAuxHead(model, tap, x.shape[1])
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
