"""Starting or joining a Ray cluster and placing the role actors on it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.proxy import RayRole, role_actor
from curriculum.config import (  # importing curriculum turns Ray usage stats off
    RayConfig,
    RoleResources,
)
from curriculum.errors import CurriculumError


def start_ray(config: RayConfig, code_dir: str | Path | None = None) -> None:
    """Join `ray.address`, or start a local cluster on loopback with the dashboard off.

    `code_dir`: the run's copy of its source (curriculum/run/code_version.py); every worker of
    this job imports the packages from it (`code_runtime_env`; a job-level setting in Ray).
    """
    import ray

    if ray.is_initialized():
        return
    runtime_env = code_runtime_env(code_dir) if code_dir is not None else None
    if config.address:
        ray.init(address=config.address, log_to_driver=True, runtime_env=runtime_env)
    else:
        # No dashboard; usage stats off (module top). Loopback is asked for, but Ray 2.60 resolves
        # it to the host's address and binds its ports there, guarded by its cluster token.
        # address="local": a new cluster even where another one runs on this machine (without it
        # Ray joins the latest cluster started here, /tmp/ray/ray_current_cluster, someone else's run).
        ray.init(
            address="local",
            num_cpus=config.num_cpus,
            include_dashboard=False,
            _node_ip_address=config.node_ip_address,
            configure_logging=False,
            log_to_driver=True,
            runtime_env=runtime_env,
        )


def stop_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


def on_available_devices(config: RayConfig, gpus: float) -> tuple[RayConfig, str | None]:
    """`config`, or a copy with every role on CPU when there is no GPU at all (`gpus`: what the
    cluster, or this process in `ray.in_process` mode, has; a GPU recipe on a laptop), with the
    one line that says so."""
    sections = config.roles()
    wanted = {name: section.num_gpus for name, section in sections.items() if section.num_gpus > 0}
    if not wanted or gpus > 0:
        return config, None
    cpu_only = config.model_copy(update={name: sections[name].model_copy(update={"num_gpus": 0.0}) for name in wanted})
    asked = ", ".join(f"ray.{name}.num_gpus={value:g}" for name, value in wanted.items())
    return cpu_only, f"no GPU here: {asked} run on CPU instead"


def code_runtime_env(code_dir: str | Path) -> dict[str, Any]:
    """A Ray runtime environment whose workers import the packages from `code_dir` (the run's copy
    of its source, curriculum/run/code_version.py) rather than from the working tree.

    `working_dir`, not `py_modules`: without a working_dir Ray puts the driver's current folder
    (usually the checkout) first on every worker's path. Ray uploads it from the driver and starts
    workers on every node inside their copy; no path sent to an actor is relative (the driver
    resolves them, curriculum/run/actors.py), so their working folder does not matter.
    """
    return {"working_dir": str(code_dir)}


def device_for(resources: RoleResources) -> str:
    """Where a role's model runs: on the GPU(s) Ray assigns its actor when it asks for any."""
    return "cuda" if resources.num_gpus > 0 else "cpu"


def threads_for(resources: RoleResources) -> int:
    return max(1, int(resources.num_cpus)) if resources.num_cpus >= 1 else (os.cpu_count() or 1)


def _summary(resources: dict[str, float]) -> str:
    return ", ".join(f"{key} {resources.get(key, 0):g}" for key in ("CPU", "GPU"))


def _check_fits(bundles: list[dict[str, float]], cluster: dict[str, float]) -> None:
    """More CPUs or GPUs than the whole cluster has is a config error, said at once."""
    for key in ("CPU", "GPU"):
        needed = sum(bundle.get(key, 0.0) for bundle in bundles)
        if needed > cluster.get(key, 0.0) + 1e-6:
            raise CurriculumError(
                f"the roles ask for {needed:g} {key}s in all (ray.<role>.count x num_{key.lower()}s) "
                f"but the Ray cluster has {cluster.get(key, 0.0):g}; lower them or set ray.num_cpus"
            )


class _Holder:
    def __init__(self, value: Any) -> None:
        self.value = value

    def get(self) -> Any:
        return self.value


class Shared:
    """A value the driver has (the toy base model's files) that actors on any node fetch when they
    are built, also when Ray rebuilds one: a small named actor on the driver's node holds it for as
    long as the driver keeps this object (`Placement.keep`). It travels as the holder's name only:
    an actor whose arguments hold a value of over 100 KB, an object reference or an actor handle
    might not be rebuilt without it (Ray issue #53727)."""

    def __init__(self, value: Any) -> None:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        self.name = f"curriculum-shared-{uuid.uuid4().hex}"
        self.holder = ray.remote(_Holder).options(name=self.name, num_cpus=0, scheduling_strategy=here).remote(value)

    def __getstate__(self) -> dict[str, Any]:
        return {"name": self.name}  # not the handle: the driver's copy keeps the holder alive

    def get(self) -> Any:
        import ray

        return ray.get(ray.get_actor(self.name).get.remote())


class Placement:
    """One placement group holding a bundle per actor, so a role's CPUs/GPUs are reserved
    together (strategy from config) and no device id is written into the code."""

    def __init__(self, config: RayConfig, roles: list[tuple[str, RoleResources]]):
        from ray.util.placement_group import placement_group, remove_placement_group

        self.max_restarts = config.max_restarts
        self.names: list[str] = []
        bundles = []
        for name, resources in roles:
            for _ in range(resources.count):
                self.names.append(name)
                bundles.append({"CPU": resources.num_cpus, "GPU": resources.num_gpus})
        # Ray refuses an all-zero bundle; a tiny CPU share keeps zero-CPU roles placeable.
        bundles = [{k: v for k, v in b.items() if v > 0} or {"CPU": 0.001} for b in bundles]
        import ray

        _check_fits(bundles, ray.cluster_resources())
        self.group = placement_group(bundles, strategy=config.placement_strategy)
        try:
            ray.get(self.group.ready(), timeout=config.placement_timeout_s)
        except ray.exceptions.GetTimeoutError:
            remove_placement_group(self.group)
            raise CurriculumError(
                f"the Ray cluster could not place the roles' bundles {bundles} with strategy "
                f"{config.placement_strategy} within {config.placement_timeout_s:g} s (cluster "
                f"resources {_summary(ray.cluster_resources())}); lower ray.<role>.num_cpus/num_gpus "
                "or add nodes"
            ) from None
        self._next = 0
        self._kept: list[Any] = []

    def keep(self, value: Any) -> None:
        """Hold `value` (a `Shared` the actors are built from) as long as the placement group."""
        self._kept.append(value)

    def spawn(self, name: str, resources: RoleResources, factory: Callable[[], Any]) -> Any:
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        index = self._next  # actors are spawned in the order their bundles were listed
        if self.names[index] != name:
            raise RuntimeError(f"placement: bundle {index} is for {self.names[index]}, not {name}")
        self._next += 1
        strategy = PlacementGroupSchedulingStrategy(self.group, placement_group_bundle_index=index)
        cpus = resources.num_cpus if resources.num_cpus > 0 else 0.001  # what its bundle holds
        return _spawn(name, cpus, resources, factory, strategy, self.max_restarts)

    def remove(self) -> None:
        from ray.util.placement_group import remove_placement_group

        remove_placement_group(self.group)


def spawn_on_driver_node(name: str, resources: RoleResources, factory: Callable[[], Any], max_restarts: int) -> Any:
    """An actor on this (the driver's) node, outside the placement group, restarted there too: the
    store, which writes into the run directory (curriculum/rundir.py)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    return _spawn(name, resources.num_cpus, resources, factory, here, max_restarts)


def _spawn(
    name: str, cpus: float, resources: RoleResources, factory: Callable[[], Any], strategy: Any, max_restarts: int
) -> Any:
    # A dead actor is rebuilt by Ray from the same factory (max_restarts); RayCall then restores
    # its state and resends the call, so Ray itself must not resend it first (max_task_retries=0).
    handle = (
        role_actor()
        .options(
            num_cpus=cpus,
            num_gpus=resources.num_gpus,
            name=None,
            max_restarts=max_restarts,
            max_task_retries=0,
            scheduling_strategy=strategy,
        )
        .remote(factory, threads_for(resources))
    )
    return RayRole(handle, name, call_retries=max_restarts)
