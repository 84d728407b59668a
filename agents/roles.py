"""Factories that build each role's plain object inside its actor process.

They take only picklable arguments (the config, paths and the device), so an actor can be
re-created from them after a crash. `device` is "cuda" for a role placed with
`ray.<role>.num_gpus > 0` (Ray makes the GPUs it assigned the only ones the actor sees, so no
device id is ever named) and "cpu" otherwise.
"""

from __future__ import annotations

from agents.serve import ModelServer
from curriculum.config import Config
from curriculum.engines import make_engine
from curriculum.errors import CurriculumError
from curriculum.roles.generator import GeneratorRole
from curriculum.roles.learner import LearnerWorker
from curriculum.roles.learner import make_learner as build
from curriculum.roles.solver import Solver
from curriculum.roles.teacher import SymbolicTeacher
from curriculum.roles.teacher.tracing import langchain_tracing
from curriculum.rundir import RunLayout
from curriculum.verify import Verifier
from curriculum.worlds import world_for


def make_store(path: str):
    from curriculum.store import Store

    return Store(path)


def make_solver(config: Config, base_model_path: str, name: str, device: str = "cpu", work_dir: str | None = None):
    """`work_dir`: this Solver's folder on its own machine (received policies, vLLM's files)."""
    import tempfile

    work_dir = work_dir or tempfile.mkdtemp(prefix=f"curriculum-{name}-")
    engine = make_engine(config, base_model_path, f"{work_dir}/engine", device=device)
    return Solver(
        engine,
        Verifier(config.verifier.timeout_s),
        config.solver,
        extraction=config.world.answer_extraction,
        instruction=config.world.answer_instruction,
        name=name,
        work_dir=work_dir,
    )


def make_teacher(config: Config, run_dir: str | None = None, device: str = "cpu", tracing=None):
    """The Teacher of `teacher.kind`. The LLM Teacher reads the prompts the run saved (run_dir/prompts),
    serves its own model when `teacher.serve` says so (agents/serve.py, in this actor's process, on its
    `device`), and traces its workflows into the run's MLflow run (`tracing`: a TraceTarget)."""
    if config.teacher.kind == "llm":
        return _llm_teacher(config, run_dir, device, tracing)

    mutator = world_for(config).mutator()
    if mutator is None:  # the config refuses this recipe first (config.py)
        raise CurriculumError(
            "teacher.kind=symbolic varies problems with the world's mutation operators; "
            f"world.name={config.world.name} has none"
        )
    return SymbolicTeacher(mutator, config.teacher, seed=config.experiment.seed)


def _llm_teacher(config: Config, run_dir: str | None, device: str, tracing):
    from pathlib import Path

    from curriculum.roles.teacher.llm import LLMTeacher, connector, llm_settings, load_prompts
    from curriculum.roles.teacher.workflow import verifier_equivalence

    saved = RunLayout(Path(run_dir)).prompts if run_dir else None
    base = saved if saved is not None and saved.is_dir() else None
    synthesis_prompts = None
    if config.synthesis.enabled and config.synthesis.kind == "llm":
        from curriculum.roles.teacher.llm_synthesis import load_prompts as load_synthesis_prompts

        synthesis_prompts = load_synthesis_prompts(config, base)
    server = None
    serve = llm_settings(config).serve
    if serve is not None:
        server = ModelServer(serve, RunLayout(Path(run_dir or ".")).teacher_server, device=device)
    verifier = Verifier(config.verifier.timeout_s)

    def close() -> None:
        verifier.close()
        if server is not None:
            server.stop()

    scope = None
    if tracing is not None:
        scope = langchain_tracing(tracing)
    return LLMTeacher(
        config,
        load_prompts(config, base),
        connector(config, server.ensure_running if server else None),
        verifier_equivalence(verifier),
        synthesis_prompts=synthesis_prompts,
        tracing=scope,
        close_hook=close,
    )


def make_learner(config: Config, base_model_path: str, work_dir: str, device: str = "cpu"):

    return build(config, base_model_path, work_dir, device=device)  # the algorithm of `learner.algorithm`


def make_learner_worker(config: Config, base_model_path: str, work_dir: str, device: str = "cpu"):
    """One data-parallel Learner worker (`ray.learner.count > 1`); it loads the model when it joins its group."""
    return LearnerWorker(config, base_model_path, work_dir, device)


def make_generator(config: Config, work_dir: str, device: str = "cpu"):

    return GeneratorRole(config, work_dir, device=device)
