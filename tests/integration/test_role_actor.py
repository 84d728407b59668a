"""A role built inside a Ray actor gets the threads it was given before it is built."""

import sys

import pytest

pytest.importorskip("ray")


class ThreadsWhenBuilt:
    """Records torch's thread count while it is built: vLLM's CPU backend fixes the count it finds
    then, and ignores torch.set_num_threads afterwards."""

    def __init__(self):
        import torch

        self.when_built = torch.get_num_threads()

    def threads(self):
        import torch

        return self.when_built, torch.get_num_threads()


def test_a_role_is_built_with_its_threads_not_rays_one_per_cpu():
    import ray
    from ray import cloudpickle

    from agents import cluster
    from agents.proxy import RayRole, role_actor
    from curriculum.config import RayConfig

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the actor cannot import this test module
    cluster.start_ray(RayConfig(num_cpus=2))
    try:
        # one CPU reserved (Ray sets OMP_NUM_THREADS=1 for it), two threads given, as threads_for can
        role = RayRole(role_actor().options(num_cpus=1).remote(ThreadsWhenBuilt, 2), "role")
        assert role.call(ThreadsWhenBuilt.threads).result() == (2, 2)
    finally:
        ray.shutdown()


class OutOfMemoryAlgorithm:
    """A learner algorithm whose round runs out of GPU memory (no model needed)."""

    def __init__(self):
        from types import SimpleNamespace

        self.state = SimpleNamespace(last_step_seconds=0.0)

    def learn(self, batch):
        import torch

        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.27 GiB.")


def test_a_learner_actor_out_of_gpu_memory_ends_the_call_in_one_line_without_a_restart():
    from functools import partial

    import ray
    from ray import cloudpickle

    from agents import cluster
    from agents.proxy import RayRole, role_actor
    from curriculum.config import RayConfig
    from curriculum.gpu import GPUOutOfMemory
    from curriculum.roles.api import LearnerRole
    from curriculum.roles.learner import Learner
    from curriculum.training.batch import LearnBatch

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    cluster.start_ray(RayConfig(num_cpus=2))
    try:
        actor = role_actor().options(num_cpus=1, max_restarts=3, max_task_retries=0)
        role = RayRole(actor.remote(partial(Learner, OutOfMemoryAlgorithm()), 1), "learner", call_retries=3)
        with pytest.raises(GPUOutOfMemory) as error:
            role.call(LearnerRole.learn, LearnBatch(1, 0, ())).result()
        assert "\n" not in str(error.value) and "lower learner.micro_batch_size" in str(error.value)
        assert role.restarts == 0  # ended, not restarted and sent again
    finally:
        ray.shutdown()
