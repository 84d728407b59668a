"""Factories that build each role's plain object inside its actor process.

They take only picklable arguments (the config and paths), so an actor can be
re-created from them after a crash.
"""

from __future__ import annotations

from curriculum.config import Config


def make_store(path: str):
    from curriculum.store import Store

    return Store(path)


def make_world(config: Config):
    from curriculum.worlds.arithmetic import ArithmeticWorld

    return ArithmeticWorld(config.world, seed=config.experiment.seed)


def make_solver(config: Config, base_model_path: str, name: str):
    from curriculum.engines.hf import HFEngine
    from curriculum.roles.solver import Solver
    from curriculum.verify import Verifier

    engine = HFEngine.from_pretrained(base_model_path, dtype=config.model.dtype,
                                      batch_size=config.solver.batch_size)
    return Solver(engine, Verifier(config.verifier.timeout_s), config.solver, extraction="answer_colon", name=name)


def make_teacher(config: Config):
    from curriculum.roles.teacher import SymbolicTeacher

    return SymbolicTeacher(make_world(config), config.teacher, seed=config.experiment.seed)


def make_learner(config: Config, base_model_path: str, work_dir: str):
    from curriculum.training.learners import make_learner as build

    return build(config, base_model_path, work_dir)  # the algorithm of `learner.algorithm`


def make_generator(config: Config, work_dir: str):
    from curriculum.generator import GeneratorRole

    return GeneratorRole(config, work_dir)
