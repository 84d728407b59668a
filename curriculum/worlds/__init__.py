"""Where problems and reference answers come from: `world.name` picks one (base.py says what
every world provides)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from curriculum.config import Config
    from curriculum.worlds.base import World
    from curriculum.worlds.prompt_limit import PromptLimit


def make_world(config: Config, prompt_limit: PromptLimit | None = None) -> World:
    """The world of `config.world.name`, deterministic given `experiment.seed`. `prompt_limit`: the
    longest prompt the model takes; a world reading problems from files refuses longer ones (the
    built-in arithmetic world's problems are a few dozen tokens)."""
    if config.world.name == "dataset":
        from curriculum.worlds.dataset import DatasetWorld

        return DatasetWorld(config, prompt_limit)
    from curriculum.worlds.arithmetic import ArithmeticWorld

    return ArithmeticWorld(config.world, seed=config.experiment.seed)
