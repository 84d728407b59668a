"""Where roles run: devices from `ray.<role>.num_gpus`, dtype auto, a GPU recipe on a CPU-only machine."""

import pytest

from agents.cluster import _check_fits, device_for, on_available_devices
from curriculum.config import RayConfig, RoleResources
from curriculum.errors import CurriculumError
from curriculum.models import resolve_dtype


def test_a_role_asking_for_gpus_runs_on_the_gpu_ray_assigns_it_and_others_on_cpu():
    assert device_for(RoleResources(num_gpus=0.5)) == "cuda"  # Ray's CUDA_VISIBLE_DEVICES names which
    assert device_for(RoleResources()) == "cpu"


def test_dtype_auto_is_float32_on_cpu_and_explicit_dtypes_stay():
    assert resolve_dtype("auto", "cpu") == "float32" and resolve_dtype("auto", None) == "float32"
    assert resolve_dtype("bfloat16", "cpu") == "bfloat16"


def test_without_any_gpu_a_gpu_recipe_runs_on_cpu_and_says_so():
    config = RayConfig(solver=RoleResources(num_gpus=0.5), learner=RoleResources(num_cpus=0, num_gpus=0.5))
    cpu, note = on_available_devices(config, gpus=0)
    assert cpu.solver.num_gpus == cpu.learner.num_gpus == 0 and cpu.learner.num_cpus == 0
    assert note == "no GPU here: ray.solver.num_gpus=0.5, ray.learner.num_gpus=0.5 run on CPU instead"
    assert on_available_devices(config, gpus=1) == (config, None)
    assert on_available_devices(RayConfig(), gpus=0) == (RayConfig(), None)


def test_more_than_the_cluster_has_is_one_line_at_once():
    with pytest.raises(CurriculumError, match=r"^the roles ask for 3 GPUs in all .* but the Ray cluster has 1; "):
        _check_fits([{"CPU": 1, "GPU": 1}, {"GPU": 2}], {"CPU": 4, "GPU": 1})
    _check_fits([{"CPU": 1, "GPU": 0.5}, {"CPU": 0.001, "GPU": 0.5}], {"CPU": 2, "GPU": 1})
