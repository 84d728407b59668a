"""Where roles run: devices from `ray.<role>.num_gpus`, dtype auto, a GPU recipe on a CPU-only machine."""

import pytest
import torch

from agents.cluster import _check_fits, device_for, on_available_devices
from curriculum.config import RayConfig, RoleResources
from curriculum.errors import CurriculumError
from curriculum.models import resolve_dtype


def test_a_role_asking_for_gpus_is_given_the_device_name_cuda_and_the_others_cpu():
    """Only the name a role's factory is handed: Ray's CUDA_VISIBLE_DEVICES says which GPU "cuda" is.
    That the weights then live there is the next test's (on a machine with a GPU)."""
    assert device_for(RoleResources(num_gpus=0.5)) == "cuda"
    assert device_for(RoleResources()) == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (bench/gpu_check.py checks the rest there)")
def test_on_a_gpu_the_solvers_engine_and_the_learner_hold_their_weights_and_sample_there(tmp_path):
    from toy_models import SMALL

    from curriculum.config import LearnerConfig, LoraConfig
    from curriculum.engines.hf import HFEngine
    from curriculum.models import build_char_tokenizer, build_tiny_model, save_model
    from curriculum.training.adapter import AdapterState
    from curriculum.training.grpo import GRPO

    tokenizer = build_char_tokenizer()
    save_model(build_tiny_model(SMALL, tokenizer), tokenizer, tmp_path / "tiny")
    device = device_for(RoleResources(num_gpus=0.5))
    engine = HFEngine.from_pretrained(tmp_path / "tiny", device=device)
    assert engine.device.type == "cuda"
    [[sample]] = engine.generate(["1+1=?\n"], max_new_tokens=4, temperature=1.0)
    assert sample.num_tokens >= 1
    learner = GRPO(
        AdapterState(
            tmp_path / "tiny", LoraConfig(r=4, alpha=8), LearnerConfig(), tmp_path / "learner", seed=0, device=device
        ),
        group_size=4,
        temperature=1.0,
        max_completion_length=8,
    )
    assert {p.device.type for p in learner.state.model.parameters()} == {"cuda"} and not learner.state.use_cpu


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
