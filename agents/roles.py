"""Factories that build each role's plain object inside its actor process.

They take only picklable arguments (the config, paths, files and the device), so an actor can be
re-created from them after a crash. `device` is "cuda" for a role placed with
`ray.<role>.num_gpus > 0` (Ray makes the GPUs it assigned the only ones the actor sees, so no
device id is ever named) and "cpu" otherwise.

A role may run on a node that does not see the run directory (curriculum/rundir.py): its own
files go to a folder on its node (`node_scratch`), the files it is given travel as bytes
(`FolderFiles`: the toy base model the driver built, the run's prompt files), and a path it must
read (`model.path`) is checked when it is built, in one line that names the node.
"""

from __future__ import annotations

import sys
from pathlib import Path

from agents.cluster import Shared
from agents.serve import ModelServer
from curriculum.config import Config
from curriculum.engines import make_engine
from curriculum.errors import CurriculumError
from curriculum.files import FolderFiles
from curriculum.models import ModelError, check_model_exists
from curriculum.roles.generator import GeneratorRole
from curriculum.roles.learner import LearnerWorker
from curriculum.roles.learner import make_learner as build
from curriculum.roles.solver import Solver
from curriculum.roles.teacher import SymbolicTeacher
from curriculum.roles.teacher.tracing import langchain_tracing
from curriculum.rundir import node_scratch
from curriculum.verify import Verifier
from curriculum.worlds import world_for


def this_node() -> str:
    """This machine as an error names it: its host name, and its Ray node when in a Ray actor."""
    import socket

    name = socket.gethostname()
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        name += f" (Ray node {ray.get_runtime_context().get_node_id()[:12]})"
    return name


def model_on_node(base: str | FolderFiles | Shared, role: str) -> str:
    """The base model's folder on this node: a copy of the files the driver sent (the toy model it
    built, through the object store), or `model.path` (a folder that must be on every node running a
    role, or a hub id)."""
    model: str | FolderFiles = base.get() if isinstance(base, Shared) else base
    if isinstance(model, FolderFiles):
        return str(model.write(node_scratch(f"{role}-base") / "model"))
    try:
        check_model_exists(model)
    except ModelError as exc:
        raise ModelError(
            f"{exc} on node {this_node()}, where the {role} runs: every node that runs a role needs model.path"
        ) from None
    return model


def make_store(path: str):
    from curriculum.store import Store

    return Store(path)


def make_solver(
    config: Config, base_model: str | FolderFiles | Shared, name: str, device: str = "cpu", work_dir: str | None = None
):
    """`work_dir`: this Solver's folder on its own node (received policies, vLLM's files)."""
    work_dir = work_dir or str(node_scratch(name))
    engine = make_engine(config, model_on_node(base_model, name), f"{work_dir}/engine", device=device)
    return Solver(
        engine,
        Verifier(config.verifier.timeout_s),
        config.solver,
        extraction=config.world.answer_extraction,
        instruction=config.world.answer_instruction,
        name=name,
        work_dir=work_dir,
    )


def make_teacher(config: Config, prompts: FolderFiles | None = None, device: str = "cpu", tracing=None):
    """The Teacher of `teacher.kind`. The LLM Teacher reads the prompt files the run saved (`prompts`,
    sent by the driver), serves its own model when `teacher.serve` says so (agents/serve.py, in this
    actor's process, on its `device`, its files on this node), and traces its workflows into the
    run's MLflow run (`tracing`: a TraceTarget)."""
    if config.teacher.kind == "llm":
        return _llm_teacher(config, prompts, device, tracing)

    mutator = world_for(config).mutator()
    if mutator is None:  # the config refuses this recipe first (config.py)
        raise CurriculumError(
            "teacher.kind=symbolic varies problems with the world's mutation operators; "
            f"world.name={config.world.name} has none"
        )
    return SymbolicTeacher(mutator, config.teacher, seed=config.experiment.seed)


def _llm_teacher(config: Config, prompts: FolderFiles | None, device: str, tracing):
    from curriculum.roles.teacher.llm import LLMTeacher, connector, llm_settings, load_prompts
    from curriculum.roles.teacher.workflow import verifier_equivalence

    base = prompts.write(node_scratch("teacher") / "prompts") if prompts is not None else None
    synthesis_prompts = None
    if config.synthesis.enabled and config.synthesis.kind == "llm":
        from curriculum.roles.teacher.llm_synthesis import load_prompts as load_synthesis_prompts

        synthesis_prompts = load_synthesis_prompts(config, base)
    server = None
    serve = llm_settings(config).serve
    if serve is not None:
        server = ModelServer(serve, node_scratch("teacher-server"), device=device)
    verifier = Verifier(config.verifier.timeout_s)

    def close() -> None:
        verifier.close()
        if server is not None:
            server.stop()

    scope = None
    if tracing is not None:
        _check_tracking_store(tracing.tracking_uri)
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


def _check_tracking_store(uri: str) -> None:
    """Traces go straight into the MLflow store: a file store must be on this node too."""
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).parent.is_dir():
        raise CurriculumError(
            f"the Teacher traces into {uri}, which is not on node {this_node()}, where the Teacher runs; "
            "set tracking.tracking_uri to an MLflow server (http://...) every node reaches"
        )


def make_learner(
    config: Config, base_model: str | FolderFiles | Shared, work_dir: str | None = None, device: str = "cpu"
):
    """`work_dir`: the Learner's folder on its own node (TRL's output_dir, published versions)."""
    work_dir = work_dir or str(node_scratch("learner"))
    return build(config, model_on_node(base_model, "learner"), work_dir, device=device)  # of `learner.algorithm`


def make_learner_worker(
    config: Config, base_model: str | FolderFiles | Shared, work_dir: str | None = None, device: str = "cpu"
):
    """One data-parallel Learner worker (`ray.learner.count > 1`); it loads the model when it joins its group."""
    work_dir = work_dir or str(node_scratch("learner"))
    return LearnerWorker(config, model_on_node(base_model, "learner"), work_dir, device)


def make_generator(config: Config, work_dir: str | None = None, device: str = "cpu"):
    """`work_dir`: the Generator's folder on its own node (its training scratch and checkpoints)."""
    return GeneratorRole(config, work_dir or node_scratch("generator"), device=device)
