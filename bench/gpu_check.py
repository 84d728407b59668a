"""GPU check for the first GPU machine: does configs/gsm8k_qwen.yaml's Solver and Learner fit, and how fast?

It runs the project's own classes (the HF engine of `solver.engine: hf`, the Learner that
`learner.algorithm` picks) on a random-weight Qwen2 of Qwen2.5-0.5B-Instruct's shape, its
151,936-token vocabulary included (the LM head and the logits dominate a 0.5B model's memory), at
gsm8k_qwen.yaml's sequence lengths and batch sizes, in four phases that each print a RESULT line
as soon as they end (a later phase that fails or runs out of memory leaves the earlier lines):

    RESULT phase=rollout hf_tokens_per_s=... sequences=... new_tokens=... seconds=...
    RESULT phase=grpo peak_gpu_mib=... step_s=... steps=... sequences_per_step=...
    RESULT phase=dpo peak_gpu_mib=... step_s=... steps=... pairs_per_step=...
    RESULT phase=async sequential_s=... overlapped_s=... speedup=... steps=...

- rollout: one `generate` call of `solver.batch_size` sequences (`solver.attempts` per problem,
  `solver.max_new_tokens` new tokens each) by the HF engine. vLLM cannot travel to such a machine
  (it needs its own CUDA build), so this is the HF engine's speed, not vLLM's. A random model rarely
  samples an end-of-turn token: nearly every sequence runs to max_new_tokens (the worst case).
- grpo: `learner.steps_per_round` is replaced by --steps GRPO steps of `learner.grpo.groups_per_step`
  groups on the rollout's own token ids and sampling log-probs (half the attempts of each group
  rewarded), by the recipe's GRPO Learner with its LoRA adapter; step_s includes TRL's pass over the
  round's batch for the old log-probs.
- dpo: the same with the DPO Learner (`learner.batch_size` pairs per step, a rewarded attempt against
  an unrewarded one of the same problem).
- async: loop.mode=async's overlap on this one device: the rollout and --steps GRPO steps one after
  the other, then side by side in two threads (bench/async.py `overlap`; the whole-run comparison,
  bench/async.py itself, needs Ray and vLLM, which are not here).
peak_gpu_mib is the process's peak allocation during the phase; the Solver's engine stays loaded
beside the Learner, as on the recipe's one GPU. Prompts are synthetic word problems of about
--prompt-tokens tokens with the world's instruction and a ChatML template (the real tokenizer is
not on the machine; 128 is a setting, not a measurement of GSM8K's prompts).

On CPU, `--cpu --tiny` runs the same phases at toy sizes (tests/unit/test_gpu_check.py). Results
are for the machine that printed them; nothing here is compared with another machine.

What the machine needs. It has torch 2.11, transformers 5.17, peft, accelerate and pyarrow for
Python 3.12 and no network; this checkout travels with a folder of cp312 wheels for the rest
(at most 64 MiB in all). Ray (78 MB) and MLflow do not fit and are not needed: no role runs in an
actor and nothing is tracked; neither are DuckDB, vLLM, LangGraph or math-verify (nothing is stored
or graded). Download the wheels on a machine with the network (Linux x86-64):

    pip download --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 \\
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \\
        --no-deps -d .whl/ \\
        trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 xxhash==4.1.0 \\
        pandas==3.1.1 python-dateutil==4.0.0 six==1.17.0 tzdata==2026.6 \\
        pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \\
        omegaconf==2.4.0
    du -sh .whl/   # 18M when this was written (pandas 12 MB of it); the limit is 64 MiB

(the versions of requirements/gpu.txt). On the GPU machine, from this checkout:

    pip install --no-index --no-deps .whl/*.whl && python bench/gpu_check.py

--no-deps keeps pip from replacing the machine's torch or transformers; datasets 5.2 declares
pyarrow>=24, so a machine with an older pyarrow may fail at `import datasets` (that line says so).
The whole check is meant to finish within 4 minutes on an H100 (--budget-s skips phases past it).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the project's package from this checkout (it is not installed there)

# Qwen2.5-0.5B-Instruct's config.json: the shape that sets memory and speed.
QWEN25_05B = dict(
    hidden_size=896,
    num_layers=24,
    num_heads=14,
    num_kv_heads=2,
    intermediate_size=4864,
    model_vocab_size=151936,
    max_position_embeddings=32768,
    rope_theta=1000000.0,
    rms_norm_eps=1e-6,
)
TINY_MODEL = dict(
    hidden_size=64, num_layers=2, num_heads=2, num_kv_heads=1, intermediate_size=128, max_position_embeddings=1024
)
# --tiny: the recipe's settings scaled down so that every phase takes seconds on CPU.
TINY_SETTINGS = [
    "solver.attempts=4",
    "solver.batch_size=8",
    "solver.max_new_tokens=16",
    "learner.batch_size=2",
    "learner.grpo.groups_per_step=2",
    "learner.micro_batch_size=2",  # the recipe's accumulation, scaled down: 4 passes per GRPO step
    "model.lora.r=4",
    "model.lora.alpha=8",
]
WORDS = (
    "apples pears marbles coins books pencils stickers cookies tickets shells stamps cards "
    "Sam Ann Tom Lena Raj Mia buys finds gives sells keeps shares loses gets more fewer each every "
    "How many does have now left total after week day box bag"
).split()


def recipe(tiny: bool) -> Any:
    """configs/gsm8k_qwen.yaml (scaled down with --tiny), with the HF engine."""
    from curriculum.config import load_config

    return load_config(ROOT / "configs/gsm8k_qwen.yaml", ["solver.engine=hf", *(TINY_SETTINGS if tiny else [])])


def question(rng: random.Random, words: int) -> str:
    """A synthetic word problem of about `words` words (numbers included)."""
    parts = []
    while len(parts) < words:
        parts += [
            rng.choice(WORDS[12:18]),
            rng.choice(["buys", "finds", "gives", "sells"]),
            str(rng.randint(2, 99)),
            rng.choice(WORDS[:12]) + ".",
        ]
    return " ".join(parts) + " How many are left?"


def build_model(folder: Path, tiny: bool, dtype: str) -> Path:
    """The random-weight Qwen2 (curriculum/testing/random_qwen.py) with a BPE trained on synthetic text."""
    from curriculum.testing.random_qwen import build

    rng = random.Random(0)
    text = folder / "text.jsonl"
    text.write_text(
        "".join(
            json.dumps({"question": question(rng, 30), "answer": f"{rng.randint(0, 999)}"}) + "\n" for _ in range(2000)
        )
    )
    shape = TINY_MODEL if tiny else QWEN25_05B
    return build(folder / "model", text, vocab_size=512 if tiny else 4096, dtype=dtype, **shape)


def prompts_of(tokenizer: Any, instruction: str, count: int, prompt_tokens: int) -> list[tuple[str, str]]:
    """(question, prompt) pairs whose prompts have about `prompt_tokens` tokens."""
    from curriculum.models import prompt_for

    rng, out = random.Random(1), []
    for _ in range(count):
        words = 8
        while True:
            text = question(rng, words)
            prompt = prompt_for(text, tokenizer, instruction)
            if len(tokenizer(prompt)["input_ids"]) >= prompt_tokens or words > 4 * prompt_tokens:
                break
            words += 8
        out.append((text, prompt))
    return out


class Phase:
    """Times a phase, tracks its GPU peak and prints its RESULT line (an error line if it fails)."""

    failed = False

    def __init__(self, name: str, device: str, started: float, budget_s: float):
        self.name, self.device, self.started, self.budget_s = name, device, started, budget_s
        self.skipped = False

    def __enter__(self) -> Phase:
        import torch

        if time.perf_counter() - self.started > self.budget_s:
            print(f"RESULT phase={self.name} skipped=over_budget budget_s={self.budget_s:g}", flush=True)
            self.skipped = True
        if self.device == "cuda":
            gc.collect()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        self.start = time.perf_counter()
        return self

    def peak_mib(self) -> float:
        import torch

        return torch.cuda.max_memory_allocated() / 2**20 if self.device == "cuda" else 0.0

    def result(self, **values: Any) -> None:
        shown = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
        print(
            f"RESULT phase={self.name} {shown} device={self.device} seconds={time.perf_counter() - self.start:.1f}",
            flush=True,
        )

    def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> bool:
        if error is None or isinstance(error, KeyboardInterrupt):
            return False
        Phase.failed = True
        first = " ".join(str(error).split())[:200]
        print(
            f"RESULT phase={self.name} error={type(error).__name__} peak_gpu_mib={self.peak_mib():.0f} "
            f"device={self.device} detail={first!r}",
            flush=True,
        )
        traceback.print_exception(kind, error, tb, file=sys.stderr)
        return True  # the next phase still runs


def groups_from(rollout: list[tuple[str, str, list[Any]]]) -> list[Any]:
    """GRPO/DPO groups from the rollout: every other attempt of a problem rewarded."""
    from curriculum.records import Attempt, Problem
    from curriculum.training.batch import Group

    groups = []
    for text, prompt, samples in rollout:
        problem = Problem(question=text, answer="0", solution="\\boxed{0}", source="seed")
        groups.append(
            Group(
                problem=problem,
                prompt=prompt,
                attempts=tuple(
                    Attempt(
                        problem_id=problem.id,
                        policy_version=0,
                        sample_index=j,
                        round=1,
                        completion=g.text,
                        extracted_answer=None,
                        correct=j % 2 == 0,
                        reward=float(j % 2 == 0),
                        num_tokens=g.num_tokens,
                        logprob=g.logprob,
                        token_ids=list(g.token_ids),
                        token_logprobs=list(g.token_logprobs),
                    )
                    for j, g in enumerate(samples)
                ),
            )
        )
    return groups


def learn(
    config: Any, algorithm: str, model_dir: Path, work: Path, device: str, steps: int, groups: list[Any]
) -> dict[str, float]:
    """`steps` updates by the Learner `learner.algorithm` makes (roles/learner.py), on `groups`."""
    from curriculum.roles.learner import make_learner
    from curriculum.training.batch import LearnBatch

    learner_cfg = config.learner.model_copy(update={"algorithm": algorithm, "steps_per_round": steps})
    config = config.model_copy(update={"learner": learner_cfg})
    learner = make_learner(config, model_dir, work / algorithm, device=device)
    try:
        return learner.learn(LearnBatch(round=1, policy_version=0, groups=tuple(groups))).metrics
    finally:
        del learner


def overlap_check(
    config: Any,
    engine: Any,
    asked: list[tuple[str, str]],
    model_dir: Path,
    work: Path,
    device: str,
    steps: int,
    groups: list[Any],
) -> dict[str, Any]:
    """loop.mode=async on one device, as far as this machine allows (no Ray or vLLM): the rollout and
    `steps` GRPO steps one after the other, then side by side (bench/async.py `overlap`), after one
    warm-up update. Unverified on a GPU until a device machine runs it."""
    import importlib.util

    from curriculum.roles.learner import make_learner
    from curriculum.training.batch import LearnBatch

    spec = importlib.util.spec_from_file_location("bench_async", ROOT / "bench/async.py")  # `async` is a keyword
    assert spec is not None and spec.loader is not None
    bench_async = sys.modules["bench_async"] = importlib.util.module_from_spec(spec)  # its dataclass looks it up
    spec.loader.exec_module(bench_async)
    solver = config.solver
    learner_cfg = config.learner.model_copy(update={"algorithm": "grpo", "steps_per_round": steps})
    learner = make_learner(config.model_copy(update={"learner": learner_cfg}), model_dir, work / "async", device=device)
    batch = LearnBatch(round=1, policy_version=0, groups=tuple(groups))
    learner.learn(batch)  # warm-up: the first update builds what the later ones reuse

    def rollout() -> None:
        engine.generate(
            [p for _, p in asked],
            n=solver.attempts,
            temperature=solver.temperature,
            top_p=solver.top_p,
            max_new_tokens=solver.max_new_tokens,
            seed=1,
            batch_size=solver.batch_size,
        )
        if device == "cuda":
            import torch

            torch.cuda.synchronize()

    return {**bench_async.overlap(rollout, lambda: learner.learn(batch)), "steps": steps}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="run on CPU (default: the GPU, which must be there)")
    parser.add_argument("--tiny", action="store_true", help="toy sizes (seconds on CPU) instead of the recipe's")
    parser.add_argument("--steps", type=int, default=2, help="GRPO and DPO steps each (default 2)")
    parser.add_argument(
        "--prompt-tokens", type=int, default=None, help="tokens per prompt (default 128; 24 with --tiny)"
    )
    parser.add_argument("--budget-s", type=float, default=240.0, help="skip phases that would start after this")
    parser.add_argument("--work-dir", help="where the model and the Learners' files go (default: a temporary folder)")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    import torch

    device = "cpu" if args.cpu else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print(
            "error: no CUDA GPU visible to torch; use --cpu (with --tiny) to check the phases on CPU", file=sys.stderr
        )
        return 2
    import transformers

    from curriculum.engines import make_engine
    from curriculum.models import resolve_dtype

    config = recipe(args.tiny)
    solver = config.solver
    dtype = resolve_dtype(config.model.dtype, device)
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "none"
    print(
        f"gpu_check: torch {torch.__version__}, transformers {transformers.__version__}, gpu {gpu}, dtype {dtype}, "
        f"{'tiny' if args.tiny else 'Qwen2.5-0.5B shape'}; engine: HF (vLLM does not travel here)",
        flush=True,
    )

    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        work = Path(args.work_dir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        model_dir = build_model(work, args.tiny, dtype)
        print(f"model built in {time.perf_counter() - started:.1f} s", flush=True)
        engine = make_engine(config, model_dir, work / "engine", device=device)
        problems = max(1, solver.batch_size // solver.attempts)  # one generate batch of solver.batch_size sequences
        asked = prompts_of(
            engine.tokenizer,
            config.world.answer_instruction,
            problems,
            args.prompt_tokens or (24 if args.tiny else 128),
        )
        rollout: list[tuple[str, str, list[Any]]] = []
        with Phase("rollout", device, started, args.budget_s) as phase:
            if not phase.skipped:
                start = time.perf_counter()
                samples = engine.generate(
                    [p for _, p in asked],
                    n=solver.attempts,
                    temperature=solver.temperature,
                    top_p=solver.top_p,
                    max_new_tokens=solver.max_new_tokens,
                    seed=0,
                    batch_size=solver.batch_size,
                )
                if device == "cuda":
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - start
                tokens = sum(g.num_tokens for per in samples for g in per)
                rollout = [(text, prompt, per) for (text, prompt), per in zip(asked, samples)]
                phase.result(
                    hf_tokens_per_s=tokens / seconds,
                    sequences=len(asked) * solver.attempts,
                    new_tokens=tokens,
                    max_new_tokens=solver.max_new_tokens,
                    peak_gpu_mib=phase.peak_mib(),
                )
        groups = groups_from(rollout)
        for algorithm, per_step in (
            ("grpo", f"sequences_per_step={config.learner.grpo.groups_per_step * solver.attempts}"),
            ("dpo", f"pairs_per_step={config.learner.batch_size}"),
        ):
            with Phase(algorithm, device, started, args.budget_s) as phase:
                if phase.skipped:
                    continue
                if not groups:
                    raise RuntimeError("no rollout to learn from (the rollout phase failed or was skipped)")
                metrics = learn(config, algorithm, model_dir, work, device, args.steps, groups)
                steps = int(metrics.get("steps", 0))
                if steps < 1:
                    raise RuntimeError(f"the {algorithm} Learner took no step ({metrics})")
                step_s = (metrics["seconds"] - metrics["setup_seconds"]) / steps
                key, value = per_step.split("=")
                phase.result(
                    peak_gpu_mib=phase.peak_mib(),
                    step_s=step_s,
                    steps=steps,
                    loss=float(metrics.get("loss", math.nan)),
                    **{key: value},
                )
        with Phase("async", device, started, args.budget_s) as phase:
            if not phase.skipped:
                if not groups:
                    raise RuntimeError("no rollout to overlap with (the rollout phase failed or was skipped)")
                phase.result(**overlap_check(config, engine, asked, model_dir, work, device, args.steps, groups))
        engine.close()
    print(f"RESULT phase=total seconds={time.perf_counter() - started:.1f}", flush=True)
    return 1 if Phase.failed else 0


if __name__ == "__main__":
    sys.exit(main())
