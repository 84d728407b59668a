"""Factories that build each role's plain object inside its actor process.

They take only picklable arguments (the config, paths and the device), so an actor can be
re-created from them after a crash. `device` is "cuda" for a role placed with
`ray.<role>.num_gpus > 0` (Ray makes the GPUs it assigned the only ones the actor sees, so no
device id is ever named) and "cpu" otherwise.
"""

from __future__ import annotations

from curriculum.config import Config


def make_store(path: str):
    from curriculum.store import Store

    return Store(path)


def make_solver(config: Config, base_model_path: str, name: str, device: str = "cpu"):
    from curriculum.engines.hf import HFEngine
    from curriculum.roles.solver import Solver
    from curriculum.verify import Verifier
    from curriculum.worlds import make_world

    world = make_world(config)
    engine = HFEngine.from_pretrained(base_model_path, dtype=config.model.dtype, device=device,
                                      batch_size=config.solver.batch_size)
    return Solver(engine, Verifier(config.verifier.timeout_s), config.solver, extraction=world.extraction,
                  instruction=world.instruction, name=name)


def make_teacher(config: Config):
    from curriculum.roles.teacher import SymbolicTeacher
    from curriculum.worlds import make_world

    return SymbolicTeacher(make_world(config), config.teacher, seed=config.experiment.seed)


def make_learner(config: Config, base_model_path: str, work_dir: str, device: str = "cpu"):
    from curriculum.roles.learner import make_learner as build

    return build(config, base_model_path, work_dir, device=device)  # the algorithm of `learner.algorithm`


def make_generator(config: Config, work_dir: str, device: str = "cpu"):
    from curriculum.roles.generator import GeneratorRole

    return GeneratorRole(config, work_dir, device=device)
