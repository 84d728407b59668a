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
