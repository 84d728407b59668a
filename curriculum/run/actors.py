"""Where a run's roles live: built in this process (`ray.in_process`) or placed as Ray actors, each
from a picklable factory (agents/roles.py); restored after an actor restart; stopped with the run.

Only the driver's node sees the run directory (curriculum/rundir.py): the store actor is placed on
it, and what the other roles are sent holds no path into the run directory and no relative path."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from agents import cluster
from agents import roles as factories
from agents.learner_group import LearnerGroup
from agents.proxy import LocalRole, RayRole
from curriculum.config import Config
from curriculum.files import FolderFiles
from curriculum.roles.api import Role, Roles, SolverRole, TeacherRole
from curriculum.run import code_version
from curriculum.rundir import RunLayout

# Roles field -> its `ray.<role>` section
SECTIONS = {"store": "store", "solvers": "solver", "teacher": "teacher", "learner": "learner", "generator": "generator"}


def start(config: Config, run_dir: Path, base_path: str, tracing: Any = None) -> tuple[Roles, Any]:
    """The run's roles and their placement group (None in this process)."""
    config = with_absolute_paths(_with_server_gpus(config))
    if config.ray.in_process:
        import torch

        return local_roles(_on_available_devices(config, torch.cuda.device_count()), run_dir, base_path, tracing), None
    code = code_version.snapshot_dir(run_dir)
    cluster.start_ray(config.ray, code_dir=code if code.is_dir() else None)  # the actors run the run's code
    try:
        import ray

        config = _on_available_devices(config, ray.cluster_resources().get("GPU", 0))
        return start_roles(config, run_dir, base_path, tracing)
    except BaseException:
        cluster.stop_ray()
        raise


def stop(roles: Roles, placement: Any) -> None:
    """Close the Teacher (its server stops with the run) and, in this process, the Solvers (a vLLM
    engine process, a verifier); or remove the placement group and stop Ray."""
    if roles.teacher is not None:
        try:
            roles.teacher.call(TeacherRole.close).result()
        except Exception as exc:  # noqa: BLE001 - the run is ending; a dead actor took its server with it
            print(f"note: closing the Teacher failed ({type(exc).__name__}: {exc})")
    if placement is None:
        for solver in roles.solvers:
            solver.call(SolverRole.close).result()
        return
    placement.remove()
    cluster.stop_ray()


def restore_on_restart(roles: Roles, restore: Callable[[Role[Any]], None]) -> None:
    """A Ray actor that died and was restarted gets the loop's current state back (`restore`, the
    loop's) before its call is sent again (see `agents.proxy.RayCall`)."""
    for role in roles.all():
        if isinstance(role, RayRole | LearnerGroup):
            role.on_restart = restore


def local_roles(config: Config, run_dir: Path, base_path: str, tracing: Any = None) -> Roles:
    """Every role as a plain object in this process (`ray.in_process=true`): the same factories
    as the actors, no Ray. For debugging and for the crash tests, which kill the whole run."""
    base = _absolute(base_path)  # one machine: every role reads the base model where it is
    return _build_roles(_role_factories(config, run_dir, base, tracing), lambda name, made: LocalRole(made(), name))


def start_roles(config: Config, run_dir: Path, base_path: str, tracing: Any = None) -> tuple[Roles, Any]:
    """Place one actor per role (solvers: `ray.solver.count`; the Learner: `ray.learner.count`
    data-parallel workers behind one handle, agents/learner_group.py) in a placement group."""
    # The toy base model was built here: its files go to the other nodes through the object store.
    base: str | cluster.Shared = (
        cluster.Shared(FolderFiles.read(base_path)) if config.model.kind == "tiny" else _absolute(base_path)
    )
    made = _role_factories(config, run_dir, base, tracing)
    sections = config.ray.roles()
    grouped = [field for field, factory in made.items() if factory and field != "store"]
    placement = cluster.Placement(config.ray, [(SECTIONS[field], sections[SECTIONS[field]]) for field in grouped])
    placement.keep(base)  # as long as an actor may be rebuilt from it

    learner_worker = partial(  # with ray.learner.count > 1: each of the data-parallel workers
        factories.make_learner_worker, config, base, device=cluster.device_for(sections["learner"])
    )

    def spawn(role: str, factory: Callable[[], Any]) -> Any:  # in the order the bundles were listed
        if role == "store":  # it writes the run directory: on the driver's node, outside the group
            return cluster.spawn_on_driver_node(role, sections[role], factory, config.ray.max_restarts)
        if role == "learner" and sections[role].count > 1:  # data-parallel workers behind one handle
            workers = [placement.spawn(role, sections[role], learner_worker) for _ in range(sections[role].count)]
            return LearnerGroup(workers, role, call_retries=config.ray.max_restarts)
        return placement.spawn(role, sections[role], factory)

    roles = _build_roles(made, spawn)
    try:
        for role in roles.all():  # a role that cannot be built on its node fails the run now, in one line
            if isinstance(role, RayRole):
                role.ready()
    except BaseException:
        placement.remove()
        raise
    return roles, placement


def _build_roles(made: dict[str, Any], make: Callable[[str, Callable[[], Any]], Any]) -> Roles:
    """`Roles` from `_role_factories`, each role built by `make(role name, factory)`."""

    def build(field: str, factory: Any) -> Any:
        if factory is None:
            return None
        if isinstance(factory, list):
            return [make(SECTIONS[field], one) for one in factory]
        return make(SECTIONS[field], factory)

    return Roles(**{field: build(field, factory) for field, factory in made.items()})


def _role_factories(config: Config, run_dir: Path, base: Any, tracing: Any = None) -> dict[str, Any]:
    """Per `Roles` field, the picklable factory that builds it (a list for the Solvers, None for a
    role the recipe leaves out), each told its device from `ray.<role>.num_gpus`. The Teacher role
    is there for the Teacher, and for LLM synthesis (which writes with the Teacher's model). `base`:
    the base model (agents.roles.model_on_node); the run's prompt files go as bytes."""
    ray_cfg, layout, device_for = config.ray, RunLayout(run_dir.resolve()), cluster.device_for
    prompts = FolderFiles.read(layout.prompts) if layout.prompts.is_dir() else None
    return {
        "store": partial(factories.make_store, str(layout.store)),
        "solvers": [
            partial(factories.make_solver, config, base, f"solver-{i}", device_for(ray_cfg.solver))
            for i in range(ray_cfg.solver.count)
        ],
        "teacher": partial(factories.make_teacher, config, prompts, device_for(ray_cfg.teacher), tracing)
        if config.teacher.enabled or config.uses_llm_teacher
        else None,
        "learner": partial(factories.make_learner, config, base, None, device_for(ray_cfg.learner)),
        "generator": partial(factories.make_generator, config, None, device_for(ray_cfg.generator))
        if config.generator.enabled
        else None,
    }


def _absolute(path: str) -> str:
    """A relative path that exists here, made absolute (a hub id stays as it is)."""
    return str(Path(path).resolve()) if not Path(path).is_absolute() and Path(path).exists() else path


def with_absolute_paths(config: Config) -> Config:
    """`config` with the paths the roles read made absolute on the driver: an actor works in its
    own folder, on its own node (the same absolute path must exist there; the roles check it)."""
    update: dict[str, Any] = {"data_root": str(Path(config.data_root).resolve())}
    if config.model.path is not None:
        update["model"] = config.model.model_copy(update={"path": _absolute(config.model.path)})
    teacher = config.llm_teacher
    if teacher is not None and teacher.serve is not None:
        serve = teacher.serve.model_copy(update={"model": _absolute(teacher.serve.model)})
        update["teacher"] = teacher.model_copy(update={"serve": serve})
    return config.model_copy(update=update)


def _with_server_gpus(config: Config) -> Config:
    """With `teacher.serve`, the Teacher's bundle holds the server's GPUs (teacher.serve.num_gpus)."""
    teacher = config.llm_teacher
    serve = teacher.serve if teacher is not None else None
    if serve is None or not serve.num_gpus:
        return config
    bundle = config.ray.teacher.model_copy(update={"num_gpus": serve.num_gpus})
    return config.model_copy(update={"ray": config.ray.model_copy(update={"teacher": bundle})})


def _on_available_devices(config: Config, gpus: float) -> Config:
    ray_cfg, note = cluster.on_available_devices(config.ray, gpus)
    if note:
        print(f"note: {note}")
    return config.model_copy(update={"ray": ray_cfg})
