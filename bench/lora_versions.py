"""Memory of the vLLM engine over many published policy versions (one LoRA adapter each).

A run publishes a new adapter every round and the Solver's engine loads each under a new id and
drops the previous one (engines/vllm.py); repeated adapter loading has leaked host memory before
(TRL #2730). This loads `--versions` distinct adapters of the recipe's LoRA shape one after
another into one engine, samples a batch with each, and records the resident memory of the
engine: this process and its children (vLLM's engine processes, if `solver.vllm.engine_process`),
as PSS so that shared pages are counted once.

    python bench/lora_versions.py                  # 60 versions, configs/tiny.yaml's model and LoRA
    python bench/lora_versions.py --versions 100 solver.engine=vllm solver.vllm.engine_process=true

Last line: RESULT versions=<n> rss_after_first_mib=<m> rss_after_last_mib=<m> rss_growth_mib=<m>
rss_growth_second_half_mib=<m> (growth from the middle version to the last: a leak keeps growing,
a cache that fills up does not).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def engine_memory_mib() -> float:
    """PSS of this process and its descendants, MiB (RSS where PSS is not readable)."""
    import psutil

    total = 0
    for process in [psutil.Process(), *psutil.Process().children(recursive=True)]:
        try:
            info = process.memory_full_info()
            total += getattr(info, "pss", info.rss)
        except psutil.Error:
            continue
    return total / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=60)
    parser.add_argument("--prompts", type=int, default=32, help="prompts sampled with each version")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of configs/tiny.yaml")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)

    import random

    import torch
    from transformers import AutoModelForCausalLM

    from curriculum.config import load_config
    from curriculum.engines.vllm import VLLMEngine
    from curriculum.models import attach_lora, load_tokenizer, prompt_for
    from curriculum.training.pretrain import pretrain
    from curriculum.worlds import make_world

    config = load_config(ROOT / "configs/tiny.yaml", ["solver.engine=vllm", *args.overrides])
    base_path = str(pretrain(config, progress=False).path)
    tokenizer = load_tokenizer(base_path)
    problems = make_world(config).seed_candidates(args.prompts, random.Random(0))
    prompts = [prompt_for(p.question, tokenizer) for p in problems]
    peft_model = attach_lora(AutoModelForCausalLM.from_pretrained(base_path), config.model.lora)
    lora_b = [p for name, p in peft_model.named_parameters() if "lora_B" in name]

    with tempfile.TemporaryDirectory(prefix="bench-lora-") as tmp:
        engine = VLLMEngine.from_config(config, base_path, Path(tmp) / "engine")
        try:
            memory, start = [], time.perf_counter()
            for version in range(1, args.versions + 1):
                with torch.no_grad():  # a distinct policy per version, as training makes them
                    for p in lora_b:
                        p.normal_(0, 0.01, generator=torch.Generator().manual_seed(version))
                folder = Path(tmp) / "learner" / f"policy_v{version:04d}"
                peft_model.save_pretrained(folder)
                if version == 1:
                    size = (folder / "adapter_model.safetensors").stat().st_size / 2**20
                    print(f"adapter: r={config.model.lora.r}, {size:.1f} MiB", flush=True)
                engine.load_adapter(folder, version)
                engine.generate(
                    prompts, n=config.solver.attempts, max_new_tokens=config.solver.max_new_tokens, seed=version
                )
                memory.append(engine_memory_mib())
                loaded = len(engine.llm.llm_engine.list_loras())
                if version == 1 or version % 10 == 0:
                    print(
                        f"version {version:3d}: engine memory {memory[-1]:7.1f} MiB, adapters loaded {loaded}, "
                        f"{time.perf_counter() - start:.0f} s",
                        flush=True,
                    )
        finally:
            engine.close()
    middle = memory[len(memory) // 2]
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    print(
        f"RESULT versions={args.versions} rss_after_first_mib={memory[0]:.0f} rss_after_last_mib={memory[-1]:.0f} "
        f"rss_growth_mib={memory[-1] - memory[0]:.0f} rss_growth_second_half_mib={memory[-1] - middle:.0f}"
    )


if __name__ == "__main__":  # vLLM may start its engine process with spawn
    main()
