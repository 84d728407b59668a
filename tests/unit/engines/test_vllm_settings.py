"""What the vLLM engine sets up before vLLM starts (no vLLM needed): its environment and request seeds."""

import os

import pytest

from curriculum.config import ConfigError, VLLMConfig, from_dict
from curriculum.engines.vllm import engine_environment, request_seeds


def test_engine_files_stay_in_its_folder_and_its_ports_on_loopback(tmp_path):
    env = engine_environment(VLLMConfig(cpu_kv_cache_gib=2), tmp_path, "cpu", tmp_path / "rpc")
    assert env["VLLM_HOST_IP"] == env["VLLM_LOOPBACK_IP"] == "127.0.0.1"
    for name in ("VLLM_RPC_BASE_PATH", "VLLM_CACHE_ROOT", "TORCHINDUCTOR_CACHE_DIR"):
        assert env[name].startswith(str(tmp_path)), name
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "2" and env["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0"
    cores = sorted(os.sched_getaffinity(0))
    expected = f"{cores[0]}-{cores[-1]}" if cores == list(range(cores[0], cores[-1] + 1)) else ",".join(map(str, cores))
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == expected
    assert env["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"  # the engine core inside the Solver's process
    assert env["VLLM_NO_USAGE_STATS"] == "1"

    bound = engine_environment(VLLMConfig(cpu_threads_bind="0-7", engine_process=True), tmp_path, "cpu", tmp_path)
    assert bound["VLLM_CPU_OMP_THREADS_BIND"] == "0-7" and bound["VLLM_ENABLE_V1_MULTIPROCESSING"] == "1"
    on_gpu = engine_environment(VLLMConfig(), tmp_path, "cuda", tmp_path)
    assert not any(name.startswith("VLLM_CPU_") for name in on_gpu)


def test_a_prompts_seed_depends_on_the_call_seed_and_the_prompt_not_its_position():
    a, b, c = [1, 2, 3], [4, 5], [6]
    seeds = request_seeds(7, [a, b, c])
    assert request_seeds(7, [c, a]) == [seeds[2], seeds[0]]
    assert request_seeds(8, [a])[0] != seeds[0]
    repeated = request_seeds(7, [a, b, a])
    assert repeated[:2] == seeds[:2] and repeated[2] not in seeds  # a repeat samples anew
    assert all(0 <= s < 2**62 for s in seeds)  # vLLM adds the sample index (n) to it


def test_engine_choice_is_validated_in_one_line():
    assert from_dict({"solver": {"engine": "vllm", "vllm": {"gpu_memory_utilization": 0.5}}}).solver.engine == "vllm"
    with pytest.raises(ConfigError, match=r"solver.engine' = 'sglang'") as caught:
        from_dict({"solver": {"engine": "sglang"}})
    assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match=r"solver.vllm.gpu_memory_utilization"):
        from_dict({"solver": {"engine": "vllm", "vllm": {"gpu_memory_utilization": 1.5}}})


def test_ray_solver_num_gpus_reaches_vllm_as_its_tensor_parallel_size(tmp_path):
    from curriculum.engines.vllm import llm_arguments, tensor_parallel_for

    config = from_dict({"solver": {"engine": "vllm"}, "ray": {"solver": {"num_gpus": 2}}})
    size = tensor_parallel_for(config.ray.solver.num_gpus, "cuda")  # what VLLMEngine.from_config passes on
    arguments = llm_arguments(tmp_path, config.solver.vllm, "bfloat16", "cuda", 0, 8, tensor_parallel_size=size)
    assert arguments["tensor_parallel_size"] == 2
    assert arguments["distributed_executor_backend"] == "mp"  # "uni" drives a single GPU
    single = llm_arguments(tmp_path, config.solver.vllm, "bfloat16", "cuda", 0, 8, tensor_parallel_size=1)
    assert "tensor_parallel_size" not in single and single["distributed_executor_backend"] == "uni"
    assert tensor_parallel_for(2, "cpu") == 1 and tensor_parallel_for(0.5, "cuda") == 1


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"ray": {"solver": {"num_gpus": 1.5}}, "solver": {"engine": "vllm"}}, r"ray.solver.num_gpus=1.5: above 1"),
        ({"ray": {"solver": {"num_gpus": 2}}}, r"ray.solver.num_gpus=2 with solver.engine=hf: .* solver.engine=vllm"),
    ],
)
def test_gpus_a_solver_cannot_use_are_refused_in_one_line(overrides, expected):
    with pytest.raises(ConfigError, match=expected) as caught:
        from_dict(overrides)
    assert "\n" not in str(caught.value)
