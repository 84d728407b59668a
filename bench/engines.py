"""Sampling throughput of the Solver's engines on the same prompts: the HF engine, our vLLM engine
through a Solver actor, and raw `vllm.LLM.generate` with the same settings.

Workloads (each sampled by all three):
  toy    one round of configs/tiny.yaml: `loop.problems_per_round` problems x `solver.attempts`
         samples, at most `solver.max_new_tokens` tokens, on the toy base model (pretrained and cached
         under .cache/curriculum on first use, ~3 min);
  gsm8k  GSM8K train questions with the boxed instruction in the chat template of the random Qwen2
         fixture (curriculum/testing/random_qwen.py), configs/gsm8k_qwen.yaml's sampling settings.

Systems:
  hf     `HFEngine.generate` in this process;
  vllm   `Solver.attempt` on a Ray actor whose Solver holds our `VLLMEngine` (sampling, grading,
         Attempt records and their trip back to the driver), timed from the driver;
  raw    `vllm.LLM.generate` in this process with the same LLM options (LoRA on, the zero adapter
         of policy v0, float32, processed log-probs) and the same SamplingParams and request seeds.
         The bench checks that raw and vllm sampled the same tokens, so the ratio compares equal work.
Each system is warmed up on a few prompts first (vLLM compiles its graph then); tokens/s counts the
generated tokens, stop tokens included.

    python bench/engines.py                        # both workloads
    python bench/engines.py --toy-problems 128 --gsm8k-prompts 32

Last line: RESULT hf_tokens_per_s=... vllm_tokens_per_s=... system_over_raw_vllm=... over both
workloads (total tokens / total seconds), then the same per workload (toy_*, gsm8k_*).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WARMUP_PROMPTS = 4


def hf_tokens(config, base_path: str, prompts: list[str]) -> tuple[int, float]:
    from curriculum.engines.hf import HFEngine

    s = config.solver
    engine = HFEngine.from_pretrained(base_path, dtype=config.model.dtype, batch_size=s.batch_size)
    engine.generate(prompts[:WARMUP_PROMPTS], n=s.attempts, max_new_tokens=s.max_new_tokens, seed=1)
    start = time.perf_counter()
    out = engine.generate(prompts, n=s.attempts, temperature=s.temperature, top_p=s.top_p,
                          max_new_tokens=s.max_new_tokens, seed=0)
    seconds = time.perf_counter() - start
    return sum(g.num_tokens for per in out for g in per), seconds


def system_tokens(config, base_path: str, problems, work_dir: Path) -> tuple[list[list[int]], float]:
    """Token ids of every attempt (problem order, then sample index) and the seconds of the call."""
    import ray

    from agents import roles as factories
    from agents.actor import RayRole, RoleActor

    actor = RoleActor.options(num_cpus=1).remote(
        partial(factories.make_solver, config, base_path, "solver-0", "cpu", str(work_dir)), os.cpu_count() or 1)
    solver = RayRole(actor, "solver")
    try:
        solver.call("attempt", problems[:WARMUP_PROMPTS], 1, 1).result()
        start = time.perf_counter()
        attempts = solver.call("attempt", problems, 1, 0).result()
        seconds = time.perf_counter() - start
    finally:
        ray.kill(actor)
    return [a.token_ids for a in attempts], seconds


def raw_tokens(config, base_path: str, prompts: list[str], work_dir: Path) -> tuple[list[list[int]], float]:
    """The same sampling with `vllm.LLM` used directly (the engine's own settings, no Solver)."""
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt
    from vllm.lora.request import LoRARequest

    from curriculum.engines.base import stop_token_ids
    from curriculum.engines.vllm import (
        _generation_config,
        engine_environment,
        llm_arguments,
        lora_rank_for,
        request_seeds,
    )
    from curriculum.models import load_tokenizer, resolve_dtype, write_identity_adapter

    s, v = config.solver, config.solver.vllm
    (work_dir / "rpc").mkdir(parents=True, exist_ok=True)
    os.environ.update(engine_environment(v, work_dir, "cpu", work_dir / "rpc"))
    tokenizer = load_tokenizer(base_path)
    adapter = write_identity_adapter(base_path, config.model.lora, work_dir / "policy-v0")
    llm = LLM(**llm_arguments(Path(base_path).resolve(), v, resolve_dtype(config.model.dtype, "cpu"), "cpu",
                              config.experiment.seed, lora_rank_for(config.model.lora.r)))
    lora = LoRARequest("policy-v0", 1, str(adapter))
    stops = stop_token_ids(_generation_config(base_path), tokenizer)

    def generate(texts: list[str], seed: int):
        ids = tokenizer(texts)["input_ids"]
        params = [SamplingParams(n=s.attempts, temperature=s.temperature, top_p=s.top_p, top_k=0,
                                 max_tokens=s.max_new_tokens, seed=request_seed, logprobs=0, stop_token_ids=stops,
                                 detokenize=False) for request_seed in request_seeds(seed, ids)]
        return llm.generate([TokensPrompt(prompt_token_ids=p) for p in ids], params, lora_request=lora, use_tqdm=False)

    try:
        generate(prompts[:WARMUP_PROMPTS], 1)
        start = time.perf_counter()
        outputs = generate(prompts, 0)
        seconds = time.perf_counter() - start
    finally:
        llm.llm_engine.engine_core.shutdown()
    return [list(c.token_ids) for out in outputs for c in sorted(out.outputs, key=lambda c: c.index)], seconds


def measure(name: str, config, base_path: str, problems, tmp: Path) -> dict[str, float]:
    from curriculum.models import load_tokenizer, prompt_for

    tokenizer = load_tokenizer(base_path)
    instruction = config.world.answer_instruction
    prompts = [prompt_for(p.question, tokenizer, instruction) for p in problems]
    s = config.solver
    print(f"{name}: {len(prompts)} prompts x {s.attempts} samples, <= {s.max_new_tokens} new tokens, "
          f"temperature {s.temperature:g}, top_p {s.top_p:g}", flush=True)
    hf_n, hf_s = hf_tokens(config, base_path, prompts)
    print(f"  hf    {hf_n} tokens in {hf_s:.1f} s: {hf_n / hf_s:,.0f} tokens/s", flush=True)
    system, system_s = system_tokens(config, base_path, problems, tmp / f"{name}-solver")
    system_n = sum(map(len, system))
    print(f"  vllm  {system_n} tokens in {system_s:.1f} s: {system_n / system_s:,.0f} tokens/s "
          "(Solver actor: sampling, grading, records)", flush=True)
    raw, raw_s = raw_tokens(config, base_path, prompts, tmp / f"{name}-raw")
    raw_n = sum(map(len, raw))
    same = raw == system
    print(f"  raw   {raw_n} tokens in {raw_s:.1f} s: {raw_n / raw_s:,.0f} tokens/s (vllm.LLM.generate); "
          f"same samples as the Solver's: {'yes' if same else 'NO'}", flush=True)
    if not same:
        raise SystemExit(f"{name}: raw vLLM and the Solver sampled different tokens; the ratio would compare "
                         "different work")
    return {"hf_tokens": hf_n, "hf_s": hf_s, "vllm_tokens": system_n, "vllm_s": system_s, "raw_tokens": raw_n,
            "raw_s": raw_s}


def toy_workload(args, tmp: Path):
    from curriculum.config import load_config
    from curriculum.training.pretrain import pretrain
    from curriculum.worlds import make_world

    config = load_config(ROOT / "configs/tiny.yaml", ["solver.engine=vllm", *args.toy_overrides])
    base_path = str(pretrain(config, progress=False).path)
    world = make_world(config)
    count = args.toy_problems or config.loop.problems_per_round
    problems = list(world.seed_candidates(count, random.Random(0)))
    return config, base_path, problems


def gsm8k_workload(args, tmp: Path):
    from curriculum.config import load_config
    from curriculum.testing.random_qwen import build
    from curriculum.worlds.loading import load_named

    model = build(tmp / "random-qwen")
    config = load_config(ROOT / "configs/gsm8k_qwen.yaml", [
        f"model.path={model}", "solver.engine=vllm", f"solver.max_new_tokens={args.gsm8k_max_new_tokens}"])
    problems = load_named(config, "gsm8k_train")[:args.gsm8k_prompts]
    return config, str(model), problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--toy-problems", type=int, default=None, help="default: loop.problems_per_round (640)")
    parser.add_argument("--toy-overrides", nargs="*", default=[], help="key=value overrides of configs/tiny.yaml")
    parser.add_argument("--gsm8k-prompts", type=int, default=64)
    parser.add_argument("--gsm8k-max-new-tokens", type=int, default=128,
                        help="the recipe's 512 would make the random model's nonsense the whole benchmark")
    parser.add_argument("--only", choices=["toy", "gsm8k"], default=None)
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)

    import ray

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, _node_ip_address="127.0.0.1",
                 configure_logging=False)
        try:
            for name, workload in (("toy", toy_workload), ("gsm8k", gsm8k_workload)):
                if args.only in (None, name):
                    config, base_path, problems = workload(args, Path(tmp))
                    results[name] = measure(name, config, base_path, problems, Path(tmp))
        finally:
            ray.shutdown()
    print(f"load average at end: {os.getloadavg()[0]:.2f}")

    def rates(rows: list[dict[str, float]]) -> dict[str, float]:
        total = {key: sum(row[key] for row in rows) for key in rows[0]}
        vllm, raw = total["vllm_tokens"] / total["vllm_s"], total["raw_tokens"] / total["raw_s"]
        return {"hf_tokens_per_s": total["hf_tokens"] / total["hf_s"], "vllm_tokens_per_s": vllm,
                "raw_vllm_tokens_per_s": raw, "system_over_raw_vllm": vllm / raw}

    line = {**rates(list(results.values()))}
    for name, row in results.items():
        line.update({f"{name}_{key}": value for key, value in rates([row]).items()})
    print("RESULT " + " ".join(f"{k}={v:.3f}" if "over" in k else f"{k}={v:.0f}" for k, v in line.items()))


if __name__ == "__main__":  # vLLM starts its engine process with spawn
    main()
