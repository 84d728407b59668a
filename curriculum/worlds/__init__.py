"""Where problems and reference answers come from: `world.name` picks one (base.py says what
every world provides)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from curriculum.config import Config
    from curriculum.worlds.base import World


def make_world(config: "Config") -> "World":
    """The world of `config.world.name`, deterministic given `experiment.seed`."""
    if config.world.name == "dataset":
        from curriculum.worlds.dataset import DatasetWorld

        return DatasetWorld(config)
    from curriculum.worlds.arithmetic import ArithmeticWorld

    return ArithmeticWorld(config.world, seed=config.experiment.seed)
