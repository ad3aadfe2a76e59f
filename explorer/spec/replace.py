"""A network with some of its blocks replaced by a design: ``replaced(spec, {name: block})``.

A design is a block (a ``Block``, a plain ``Layer`` for a stem's layer, or the plain-JSON dict of
either, the block schema of ``NetSpec.to_dict``) placed at a name: a block
(``inception_a.0``) or a stage (``inception_a``: every block in it). Only the replaced blocks
change; the walk re-threads every shape and channel count after them, and refuses a design that
cannot run there with a ``ShapeError`` naming stage, block, branch and layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace as dc_replace

from explorer.core.i18n import _
from explorer.spec.errors import ConfigError
from explorer.spec.netspec import Block, Layer, NetSpec, Stage, _Reader
from explorer.spec.walk import walk


def as_block(design, where: str | None = None) -> Block | Layer:
    """A Block or Layer as it is; a plain-JSON dict read and checked (errors name the branch
    and layer, prefixed by ``where``: by default "the design")."""
    if isinstance(design, (Block, Layer)):
        return design
    where = where or _("the design")
    if isinstance(design, Mapping):
        reader = _Reader()
        reader.where.append(where)
        return reader.block_or_layer(design)
    raise ConfigError(_("{where}: a design is a block (its JSON object, e.g. {example}), got "
                        "{type}").format(where=where, example='{"op": "concat", "branches": {...}}',
                                         type=type(design).__name__))


def targets(spec: NetSpec, name: str) -> list[str]:
    """The qualified block names ``name`` stands for: itself (a block) or every block of a stage."""
    if not isinstance(name, str):
        raise ConfigError(_("a replaced name is text (stage or stage.block), got {got}").format(
            got=repr(name)))
    stage_name, dot, block_name = name.partition(".")
    stages = {s.name: s for s in spec.stages}
    if stage_name not in stages:
        raise ConfigError(_("{variant} has no block or stage {name}; its stages are: {stages} "
                            "(a block is stage.block, e.g. {example})").format(
            variant=spec.variant, name=repr(name), stages=", ".join(stages),
            example=f"{spec.stages[-1].name}.{spec.stages[-1].blocks[0][0]}"))
    blocks = dict(stages[stage_name].blocks)
    if not dot:
        return [f"{stage_name}.{b}" for b in blocks]
    if block_name not in blocks:
        raise ConfigError(_("{variant} has no block {name}; the blocks of {stage} are: {blocks}")
                          .format(variant=spec.variant, name=repr(name), stage=stage_name,
                                  blocks=", ".join(blocks)))
    return [name]


def replaced(spec: NetSpec, replace: Mapping | None, *, check: bool = True) -> NetSpec:
    """``spec`` with each named block (or every block of a named stage) replaced by its design.
    ``check``: walk the result, so that a design that cannot run there raises ``ShapeError``
    naming its place now rather than at build time."""
    if not replace:
        return spec
    if not isinstance(replace, Mapping):
        raise ConfigError(_("replace is a mapping {mapping}, e.g. {example}").format(
            mapping="{name: block}", example="{'inception_a.0': block}"))
    new: dict[str, Block | Layer] = {}
    for name, design in replace.items():
        block = as_block(design, _("the design for {name}").format(name=name))
        for target in targets(spec, name):
            new[target] = block
    stages = []
    for s in spec.stages:
        blocks = tuple((b, new.get(f"{s.name}.{b}", item)) for b, item in s.blocks)
        stages.append(s if blocks == s.blocks else Stage(s.name, blocks, s.info))
    if tuple(stages) == spec.stages:
        return spec
    out = dc_replace(spec, stages=tuple(stages),
                     title=(spec.title + " (designed)") if spec.title else spec.title)
    if check:
        walk(out, fields=False)
    return out
