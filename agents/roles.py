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


def make_solver(config: Config, base_model_path: str, name: str, device: str = "cpu",
                work_dir: str | None = None):
    """`work_dir`: this Solver's folder on its own machine (received policies, vLLM's files)."""
    import tempfile

    from curriculum.engines import make_engine
    from curriculum.roles.solver import Solver
    from curriculum.verify import Verifier
    from curriculum.worlds import make_world

    world = make_world(config)
    work_dir = work_dir or tempfile.mkdtemp(prefix=f"curriculum-{name}-")
    engine = make_engine(config, base_model_path, f"{work_dir}/engine", device=device)
    return Solver(engine, Verifier(config.verifier.timeout_s), config.solver, extraction=world.extraction,
                  instruction=world.instruction, name=name, work_dir=work_dir)


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
