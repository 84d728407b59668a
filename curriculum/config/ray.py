"""ray: the cluster and each role's actors, CPUs and GPUs."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from curriculum.config.base import Section


class RoleResources(Section):
    count: int = Field(default=1, ge=1, description="actors of this role")
    num_cpus: float = Field(default=1.0, ge=0)
    num_gpus: float = Field(default=0.0, ge=0)


class RayConfig(Section):
    address: str | None = Field(default=None, description="join this cluster; default: a local one")
    num_cpus: int | None = Field(default=None, ge=1, description="CPUs of the local cluster")
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = "PACK"
    placement_timeout_s: float = Field(
        default=300.0,
        gt=0,
        description="how long to wait for the cluster to place every role (nodes joining an autoscaling cluster)",
    )
    in_process: bool = Field(
        default=False, description="run every role in the driver process, without Ray (debugging, tests)"
    )
    max_restarts: int = Field(
        default=3, ge=0, description="times Ray restarts a dead role actor; the call it was running is then sent again"
    )
    node_ip_address: str = Field(
        default="127.0.0.1",
        description="node address of a local cluster (Ray 2.60 "
        "resolves loopback to the host's address and guards its ports with a token)",
    )
    store: RoleResources = RoleResources(num_cpus=0)
    solver: RoleResources = RoleResources()
    teacher: RoleResources = RoleResources(num_cpus=0)
    generator: RoleResources = RoleResources(num_cpus=0)
    learner: RoleResources = Field(
        default=RoleResources(num_cpus=0),
        description="count > 1: that many data-parallel Learner workers in one torch.distributed group "
        "(NCCL on GPUs, gloo on CPU), each with num_gpus (at most 1) of its own; a step's batch is "
        "split between them and rank 0 publishes the adapter",
    )

    @model_validator(mode="after")
    def _gpus_per_actor(self) -> RayConfig:
        solver = self.solver.num_gpus
        if solver > 1 and solver != int(solver):
            raise ValueError(
                f"ray.solver.num_gpus={solver:g}: above 1 it is the vLLM engine's tensor-parallel size, a whole "
                "number of GPUs"
            )
        if self.learner.num_gpus > 1:
            raise ValueError(
                f"ray.learner.num_gpus={self.learner.num_gpus:g}: a Learner worker trains on one GPU at most; for "
                f"data parallelism set ray.learner.count={math.ceil(self.learner.num_gpus)} with ray.learner.num_gpus=1"
            )
        if self.generator.num_gpus > 1:  # one process: transformers would fall back to nn.DataParallel
            raise ValueError(
                f"ray.generator.num_gpus={self.generator.num_gpus:g}: the Generator trains on one GPU at most"
            )
        if self.in_process and self.learner.count > 1:
            raise ValueError(
                f"ray.learner.count={self.learner.count} data-parallel workers are Ray actors; with "
                "ray.in_process=true set it to 1"
            )
        return self

    def roles(self) -> dict[str, RoleResources]:
        """Each role's section (`ray.<role>`), by role name."""
        return {
            "store": self.store,
            "solver": self.solver,
            "teacher": self.teacher,
            "generator": self.generator,
            "learner": self.learner,
        }
