"""Where problems and reference answers come from: `world.name` picks one (base.py says what
every world provides). A process builds each world once (`world_for`) and shares it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from curriculum.config import DatasetWorldConfig
from curriculum.worlds.arithmetic import ArithmeticWorld
from curriculum.worlds.base import LeftOut, Mutator, Oracle, Pretraining, World, default_level_after
from curriculum.worlds.dataset import DatasetWorld

if TYPE_CHECKING:
    from curriculum.config import Config
    from curriculum.worlds.prompt_limit import PromptLimit

__all__ = ["LeftOut", "Mutator", "Oracle", "Pretraining", "World", "default_level_after", "make_world", "world_for"]

_built: dict[tuple[str, tuple[object, ...] | None], World] = {}  # (config, prompt limit) -> the world


def make_world(config: Config, prompt_limit: PromptLimit | None = None) -> World:
    """A new world of `config.world.name`, deterministic given `experiment.seed`. `prompt_limit`: the
    longest prompt the model takes; a world reading problems from files refuses longer ones (the
    built-in arithmetic world's problems are a few dozen tokens)."""
    settings = config.world
    if isinstance(settings, DatasetWorldConfig):
        return DatasetWorld(config, prompt_limit)

    return ArithmeticWorld(settings, seed=config.experiment.seed)


def world_for(config: Config, prompt_limit: PromptLimit | None = None) -> World:
    """The world of `config` this process has built, or a new one: every role and the loop in one
    process share it (a dataset world reads its files once)."""
    key = (config.model_dump_json(), None if prompt_limit is None else prompt_limit.key())
    if key not in _built:
        _built[key] = make_world(config, prompt_limit)
    return _built[key]
