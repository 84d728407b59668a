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
         Attempt records and their trip back to the driver), timed from the driver and split into
         the Solver's sampling, its grading and records, and Ray (the rest of the call);
  raw    `vllm.LLM.generate` in this process with the same LLM options (LoRA on, the zero adapter
         of policy v0, float32, processed log-probs) and the same SamplingParams and request seeds.
         The bench checks that raw and vllm sampled the same tokens, so the ratio compares equal work.
Each system is warmed up on a few prompts first (vLLM compiles its graph then). The two vLLM
systems are started together and take `--repeats` turns on the same prompts, in swapped order each
turn, so a change in the machine's load (a 2-core box is rarely quiet) falls on both alike.
tokens/s counts the generated tokens, stop tokens included.

    python bench/engines.py                        # both workloads
    python bench/engines.py --toy-problems 128 --gsm8k-prompts 32 --repeats 3

Last line: RESULT hf_tokens_per_s=... vllm_tokens_per_s=... system_over_raw_vllm=... over both
workloads (total tokens / total seconds), sampling_over_raw_vllm (the Solver's engine call alone),
grade_share_of_call and ray_share_of_call, then the same per workload (toy_*, gsm8k_*).
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
    out = engine.generate(
        prompts, n=s.attempts, temperature=s.temperature, top_p=s.top_p, max_new_tokens=s.max_new_tokens, seed=0
    )
    seconds = time.perf_counter() - start
    return sum(g.num_tokens for per in out for g in per), seconds


class SolverActor:
    """Our vLLM engine inside a Solver on a Ray actor, as a run uses it."""

    def __init__(self, config, base_path: str, work_dir: Path):
        import ray

        from agents import roles as factories
        from agents.proxy import RayRole, role_actor

        self.actor = (
            role_actor()
            .options(num_cpus=1)
            .remote(
                partial(factories.make_solver, config, base_path, "solver-0", "cpu", str(work_dir)), os.cpu_count() or 1
            )
        )
        self.solver = RayRole(self.actor, "solver")
        self.ray = ray
        niceness = os.getpriority(os.PRIO_PROCESS, ray.get(self.actor.pid.remote()))
        if niceness != os.getpriority(os.PRIO_PROCESS, 0):
            raise SystemExit(
                f"the Solver actor runs at nice {niceness}, this process at "
                f"{os.getpriority(os.PRIO_PROCESS, 0)}: the ratio would compare unequal priorities"
            )

    def sample(self, problems, seed: int) -> tuple[list[list[int]], dict[str, float]]:
        """Token ids of every attempt (problem order, then sample index) and the seconds of the call:
        `call` from the driver, `sample` and `grade` inside Solver.attempt, `ray` the rest (the trip
        to the actor and back: arguments, results, scheduling)."""
        from curriculum.roles.solver import Solver

        self.solver.call(Solver.take_seconds).result()
        self.ray.get(self.actor.busy_seconds.remote())
        start = time.perf_counter()
        attempts = self.solver.call(Solver.attempt, problems, 1, seed).result()
        seconds = {"call": time.perf_counter() - start, **self.solver.call(Solver.take_seconds).result()}
        seconds["ray"] = seconds["call"] - self.ray.get(self.actor.busy_seconds.remote())["attempt"]
        return [a.token_ids for a in attempts], seconds

    def close(self) -> None:
        self.ray.kill(self.actor)


class RawVLLM:
    """`vllm.LLM` used directly in this process, with the engine's own settings and no Solver."""

    def __init__(self, config, base_path: str, work_dir: Path):
        from vllm import LLM
        from vllm.lora.request import LoRARequest

        from curriculum.engines.base import stop_token_ids
        from curriculum.engines.vllm import (
            _generation_config,
            engine_environment,
            llm_arguments,
            lora_rank_for,
        )
        from curriculum.models import (
            load_tokenizer,
            resolve_dtype,
            write_identity_adapter,
        )

        self.solver, settings = config.solver, config.solver.vllm
        (work_dir / "rpc").mkdir(parents=True, exist_ok=True)
        os.environ.update(engine_environment(settings, work_dir, "cpu", work_dir / "rpc"))
        self.tokenizer = load_tokenizer(base_path)
        adapter = write_identity_adapter(base_path, config.model.lora, work_dir / "policy-v0")
        self.llm = LLM(
            **llm_arguments(
                Path(base_path).resolve(),
                settings,
                resolve_dtype(config.model.dtype, "cpu"),
                "cpu",
                config.experiment.seed,
                lora_rank_for(config.model.lora.r),
            )
        )
        self.lora = LoRARequest("policy-v0", 1, str(adapter))
        self.stops = stop_token_ids(_generation_config(base_path), self.tokenizer)

    def sample(self, prompts: list[str], seed: int) -> tuple[list[list[int]], float]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        from curriculum.engines.vllm import request_seeds

        s = self.solver
        start = time.perf_counter()
        ids = self.tokenizer(prompts)["input_ids"]
        params = [
            SamplingParams(
                n=s.attempts,
                temperature=s.temperature,
                top_p=s.top_p,
                top_k=0,
                max_tokens=s.max_new_tokens,
                seed=request_seed,
                logprobs=0,
                stop_token_ids=self.stops,
                detokenize=False,
            )
            for request_seed in request_seeds(seed, ids)
        ]
        outputs = self.llm.generate(
            [TokensPrompt(prompt_token_ids=p) for p in ids], params, lora_request=self.lora, use_tqdm=False
        )
        seconds = time.perf_counter() - start
        return [list(c.token_ids) for out in outputs for c in sorted(out.outputs, key=lambda c: c.index)], seconds

    def close(self) -> None:
        self.llm.llm_engine.engine_core.shutdown()


def measure(name: str, config, base_path: str, problems, tmp: Path, repeats: int) -> dict[str, float]:
    """HF once; then the Solver actor and raw vLLM, both started and warmed up, take turns on the
    same prompts `repeats` times (seed r on turn r, the order swapped every turn), so a change in
    the machine's load falls on both alike. Seconds and tokens are summed over the turns."""
    from curriculum.models import load_tokenizer, prompt_for

    tokenizer = load_tokenizer(base_path)
    instruction = config.world.answer_instruction
    prompts = [prompt_for(p.question, tokenizer, instruction) for p in problems]
    s = config.solver
    print(
        f"{name}: {len(prompts)} prompts x {s.attempts} samples, <= {s.max_new_tokens} new tokens, "
        f"temperature {s.temperature:g}, top_p {s.top_p:g}; vLLM systems take {repeats} turns each",
        flush=True,
    )
    hf_n, hf_s = hf_tokens(config, base_path, prompts)
    print(f"  hf    {hf_n} tokens in {hf_s:.1f} s: {hf_n / hf_s:,.0f} tokens/s", flush=True)
    # both vLLM systems sample the same tokens (checked every turn): one count serves both
    row = {
        "hf_tokens": hf_n,
        "hf_s": hf_s,
        "vllm_tokens": 0,
        "vllm_s": 0.0,
        "raw_s": 0.0,
        "sample_s": 0.0,
        "grade_s": 0.0,
        "ray_s": 0.0,
    }
    system, raw = (
        SolverActor(config, base_path, tmp / f"{name}-solver"),
        RawVLLM(config, base_path, tmp / f"{name}-raw"),
    )
    try:
        system.sample(problems[:WARMUP_PROMPTS], 10_000)
        raw.sample(prompts[:WARMUP_PROMPTS], 10_000)
        for turn in range(repeats):
            if turn % 2 == 0:
                system_ids, split = system.sample(problems, turn)
                raw_ids, raw_s = raw.sample(prompts, turn)
            else:
                raw_ids, raw_s = raw.sample(prompts, turn)
                system_ids, split = system.sample(problems, turn)
            if raw_ids != system_ids:
                raise SystemExit(
                    f"{name}: raw vLLM and the Solver sampled different tokens (seed {turn}); the "
                    "ratio would compare different work"
                )
            tokens = sum(map(len, system_ids))
            print(
                f"  turn {turn}: vllm {tokens} tokens in {split['call']:.1f} s (Solver actor: sampling "
                f"{split['sample']:.1f} s, grading and records {split['grade']:.2f} s, Ray {split['ray']:.2f} s); "
                f"raw {raw_s:.1f} s (vllm.LLM.generate); same samples: yes",
                flush=True,
            )
            row["vllm_tokens"] += tokens
            row["vllm_s"] += split["call"]
            row["raw_s"] += raw_s
            for part in ("sample", "grade", "ray"):
                row[f"{part}_s"] += split[part]
    finally:
        raw.close()
        system.close()
    print(
        f"  vllm  {row['vllm_tokens'] / row['vllm_s']:,.0f} tokens/s, raw {row['vllm_tokens'] / row['raw_s']:,.0f} "
        "tokens/s",
        flush=True,
    )
    return row


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
    config = load_config(
        ROOT / "configs/gsm8k_qwen.yaml",
        [f"model.path={model}", "solver.engine=vllm", f"solver.max_new_tokens={args.gsm8k_max_new_tokens}"],
    )
    problems = load_named(config, "gsm8k_train")[: args.gsm8k_prompts]
    return config, str(model), problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--toy-problems", type=int, default=None, help="default: loop.problems_per_round (640)")
    parser.add_argument("--toy-overrides", nargs="*", default=[], help="key=value overrides of configs/tiny.yaml")
    parser.add_argument("--gsm8k-prompts", type=int, default=64)
    parser.add_argument(
        "--gsm8k-max-new-tokens",
        type=int,
        default=128,
        help="the recipe's 512 would make the random model's nonsense the whole benchmark",
    )
    parser.add_argument("--only", choices=["toy", "gsm8k"], default=None)
    parser.add_argument("--repeats", type=int, default=3, help="turns of each vLLM system per workload")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Ray starts its workers at nice 15 (RAY_worker_niceness): the Solver actor would then lose every
    # core it shares with another process to raw vLLM's nice-0 process. Both run at this process's.
    os.environ["RAY_worker_niceness"] = str(os.getpriority(os.PRIO_PROCESS, 0))
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)

    import ray

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp:
        ray.init(  # address="local": never join a cluster left running on this machine
            address="local",
            num_cpus=os.cpu_count(),
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            configure_logging=False,
        )
        try:
            for name, workload in (("toy", toy_workload), ("gsm8k", gsm8k_workload)):
                if args.only in (None, name):
                    config, base_path, problems = workload(args, Path(tmp))
                    results[name] = measure(name, config, base_path, problems, Path(tmp), args.repeats)
        finally:
            ray.shutdown()
    print(f"load average at end: {os.getloadavg()[0]:.2f}")

    def rates(rows: list[dict[str, float]]) -> dict[str, float]:
        total = {key: sum(row[key] for row in rows) for key in rows[0]}
        vllm, raw = total["vllm_tokens"] / total["vllm_s"], total["vllm_tokens"] / total["raw_s"]
        return {
            "hf_tokens_per_s": total["hf_tokens"] / total["hf_s"],
            "vllm_tokens_per_s": vllm,
            "raw_vllm_tokens_per_s": raw,
            "system_over_raw_vllm": vllm / raw,
            # the Solver's sampling alone (its engine call) against raw vLLM, and the shares of the call
            "sampling_over_raw_vllm": total["raw_s"] / total["sample_s"],
            "grade_share_of_call": total["grade_s"] / total["vllm_s"],
            "ray_share_of_call": total["ray_s"] / total["vllm_s"],
        }

    line = {**rates(list(results.values()))}
    for name, row in results.items():
        line.update({f"{name}_{key}": value for key, value in rates([row]).items()})
    print(
        "RESULT " + " ".join(f"{k}={v:.3f}" if "over" in k or "share" in k else f"{k}={v:.0f}" for k, v in line.items())
    )


if __name__ == "__main__":  # vLLM starts its engine process with spawn
    main()
