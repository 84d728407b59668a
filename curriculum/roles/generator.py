"""The Generator: a small model that learns to write problems the way the Teacher does.

Socratic-Zero's "student-teacher": it is fine-tuned by value-weighted SFT on the
Teacher's (failed problem -> new problem) pairs, each weighted by a Gaussian of the
Solver's solve rate on the new problem (highest when the problem sits in the learning
band), and after warm-up it proposes problems of its own. It writes only questions. On a world
with an oracle (arithmetic) the oracle computes answers and traces and rejects what it cannot
solve; on a world without one (a dataset) the drafts go back unlabelled and the loop has the LLM
Teacher's labeller vote their answers (roles/teacher/llm_labels.py) before the admission gate.
On a real model (`model.kind: hf`) it is the student's base model with a LoRA adapter of its own.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from curriculum.config import Config, GeneratorConfig, LoraConfig, TinyModelConfig
from curriculum.curricula.selection import gaussian_usefulness
from curriculum.files import FolderFiles, replace_dir_atomically
from curriculum.gpu import out_of_memory_names, take_peak_memory_gib
from curriculum.models import (
    attach_lora,
    build_char_tokenizer,
    build_tiny_model,
    load_adapter,
    load_model_and_tokenizer,
    resolve_dtype,
    save_model,
)
from curriculum.records import Problem, RejectedDraft, content_id, normalize_question
from curriculum.training.sft import sft_args
from curriculum.worlds import Oracle, world_for

PROMPT_TEMPLATE = "failed: {question}\nnew:\n"
STATE_FILE = "generator.json"
STATE_FORMAT = 1
GENERATION_BATCH = 64  # sequences per generate() call
NAME = "generator"


class Generator:
    """A causal LM trained on (failed problem -> new problem) pairs; `version` counts its updates."""

    def __init__(
        self,
        base_model_path: str | Path | None,
        tiny_cfg: TinyModelConfig,
        gen_cfg: GeneratorConfig,
        work_dir: str | Path,
        seed: int,
        name: str = NAME,
        lora_cfg: LoraConfig | None = None,
        device: str = "cpu",
        dtype: str = "float32",
    ) -> None:
        """`base_model_path` None: a fresh tiny model of `tiny_cfg`, trained in full. Otherwise that
        model (a real one) with a LoRA adapter of `lora_cfg`, the only weights trained."""
        import torch

        self.gen_cfg = gen_cfg
        self.work_dir = Path(work_dir)
        self.seed = seed
        self.name = name
        self.version = 0
        self.base_model_path = base_model_path
        self.lora_cfg = lora_cfg
        self.device = device
        self.dtype = resolve_dtype(dtype, device)
        if base_model_path is None:
            self.tokenizer = build_char_tokenizer()
            with torch.random.fork_rng(devices=[]):  # the same seed gives the same initial weights
                torch.manual_seed(seed)
                self.model = build_tiny_model(tiny_cfg, self.tokenizer).to(device).eval()
        else:
            self.model, self.tokenizer = self._base_with_adapter(None)

    def _base_with_adapter(self, adapter: Path | None) -> tuple[Any, Any]:
        """The real base model with a fresh LoRA adapter, or with the one saved at `adapter`."""

        if self.lora_cfg is None or self.base_model_path is None:
            raise ValueError("a Generator on a real model trains a LoRA adapter: pass base_model_path and lora_cfg")
        model, tokenizer = load_model_and_tokenizer(self.base_model_path, dtype=self.dtype, device=self.device)
        if adapter is None:
            with _kept_global_rng():
                import torch

                torch.manual_seed(self.seed)  # the LoRA A matrices are drawn at random
                return attach_lora(model, self.lora_cfg), tokenizer
        return load_adapter(model, adapter, trainable=True), tokenizer

    # ------------------------------------------------------------------ the SFT format

    def prompt_for_parent(self, problem: Problem) -> str:
        return PROMPT_TEMPLATE.format(question=normalize_question(problem.question))

    def target_for(self, new_problem: Problem) -> str:
        return normalize_question(new_problem.question)

    # ------------------------------------------------------------------ training

    def train(self, examples: Sequence[tuple[Problem, Problem, float]]) -> dict[str, float]:
        """Weighted SFT on (parent, child, solve rate of child) triples; bumps `version`.

        The weight of a pair is `gaussian_usefulness(rate, usefulness_center, usefulness_width)`.
        No examples: nothing changes and the metrics say so.
        """

        from curriculum.training.weighted_sft import (
            build_weighted_dataset,
            make_weighted_sft_trainer,
        )

        if not examples:
            return {
                "examples": 0.0,
                "loss": 0.0,
                "mean_weight": 0.0,
                "seconds": 0.0,
                "steps": 0.0,
                "version": float(self.version),
            }
        start = time.perf_counter()
        cfg = self.gen_cfg
        weights = []
        for index, (_, child, rate) in enumerate(examples):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"example {index} (problem {child.id}): solve rate {rate} is outside [0, 1]")
            weights.append(gaussian_usefulness(rate, cfg.usefulness_center, cfg.usefulness_width))
        dataset = build_weighted_dataset(
            [self.prompt_for_parent(parent) for parent, _, _ in examples],
            [self.target_for(child) for _, child, _ in examples],
            weights,
            self.tokenizer.eos_token,
        )
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="generator-sft-", dir=self.work_dir) as scratch, _kept_global_rng():
            args = sft_args(
                scratch,
                learning_rate=cfg.learning_rate,
                batch_size=cfg.batch_size,
                micro_batch_size=cfg.micro_batch_size,
                gradient_checkpointing=cfg.gradient_checkpointing,
                epochs=cfg.epochs,
                warmup_ratio=0.0,
                seed=self.seed + self.version,
                precision={
                    "use_cpu": self.device == "cpu",
                    "bf16": self.dtype == "bfloat16" and self.device != "cpu",
                    "fp16": False,
                },
            )
            trainer = make_weighted_sft_trainer(self.model, self.tokenizer, dataset, args)
            setup = time.perf_counter() - start  # the data and the trainer, before the first step
            output = trainer.train()
        self.model = trainer.model.eval()
        self.model.config.use_cache = True  # the trainer turns the KV cache off; generation wants it back
        # TRL patches `forward` on the instance (fused LM head); drop it so patches do not pile up each round
        patched = self.model.get_base_model() if self.base_model_path is not None else self.model
        vars(patched).pop("forward", None)
        self.version += 1
        return {
            "examples": float(len(examples)),
            "loss": float(output.training_loss),
            "mean_weight": sum(weights) / len(weights),
            "seconds": time.perf_counter() - start,
            "setup_seconds": setup,
            "steps": float(output.global_step),
            "version": float(self.version),
        }

    # ------------------------------------------------------------------ proposing

    def propose(
        self, parents: Sequence[Problem], n: int, oracle: Oracle | None, round: int
    ) -> tuple[list[Problem], list[RejectedDraft]]:
        """Sample `n` questions, each conditioned on a parent (cycling through `parents`), and
        keep those the world's oracle can solve; the rest come back as rejected drafts with
        reason empty, too_long (no end within max_new_tokens), duplicate (of its parent or of
        an earlier draft in this batch) or unparseable (the oracle's reason in `detail`).
        Without an oracle a kept draft has no answer yet (`answer=""`, `answer_source="model"`):
        its parent's family, level and concepts, and a label to come from the labeller's vote."""
        from curriculum.engines.hf import HFEngine

        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if n == 0:
            return [], []
        if not parents:
            raise ValueError("propose needs at least one parent problem")
        cfg = self.gen_cfg
        fitting = self._parents_that_fit(parents)
        chosen = [fitting[i % len(fitting)] for i in range(n)]
        engine = HFEngine(self.model, self.tokenizer, batch_size=GENERATION_BATCH)
        samples = engine.generate(
            [self.prompt_for_parent(p) for p in chosen],
            n=1,
            temperature=cfg.temperature,
            max_new_tokens=cfg.max_new_tokens,
            seed=self._sampling_seed(round),
        )

        problems: list[Problem] = []
        rejected: list[RejectedDraft] = []
        seen: set[str] = set()

        def reject(parent: Problem, text: str, reason: str, detail: str) -> None:
            rejected.append(
                RejectedDraft(
                    source="generator",
                    parent_id=parent.id,
                    text=text,
                    reason=reason,
                    detail=detail,
                    round=round,
                    created_by=self.name,
                )
            )

        for parent, [sample] in zip(chosen, samples):
            text = sample.text.strip()
            key = normalize_question(text)
            if not text:
                reject(parent, sample.text, "empty", "the sample holds no text")
            elif not sample.finished:
                reject(parent, text, "too_long", f"no end of text within {cfg.max_new_tokens} new tokens")
            elif key == normalize_question(parent.question):
                reject(parent, text, "duplicate", "same question as its parent")
            elif key in seen:
                reject(parent, text, "duplicate", "proposed earlier in this batch")
            elif oracle is None:
                seen.add(key)
                problems.append(
                    Problem(
                        question=text,
                        answer="",
                        source="generator",
                        parent_id=parent.id,
                        family=parent.family,
                        level=parent.level,
                        concepts=list(parent.concepts),
                        round_created=round,
                        created_by=self.name,
                        model_version=self.version,
                        answer_source="model",
                    )
                )
            else:
                seen.add(key)
                problem = oracle.problem_from_question(
                    text, source="generator", parent_id=parent.id, round=round, created_by=self.name
                )
                if problem is None:
                    reject(parent, text, "unparseable", oracle.unsolvable_reason(text))
                else:
                    problems.append(Problem.model_validate({**problem.model_dump(), "model_version": self.version}))
        return problems, rejected

    def _parents_that_fit(self, parents: Sequence[Problem]) -> list[Problem]:
        """Parents whose prompt leaves room for `max_new_tokens` in the model's context."""
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit is None:
            return list(parents)
        room = limit - self.gen_cfg.max_new_tokens
        fitting = [p for p in parents if len(self.tokenizer(self.prompt_for_parent(p))["input_ids"]) <= room]
        if not fitting:
            raise ValueError(
                f"no parent prompt fits the model's context of {limit} tokens with "
                f"generator.max_new_tokens={self.gen_cfg.max_new_tokens}; lower it"
            )
        return fitting

    def _sampling_seed(self, round: int) -> int:
        """Different for each round and version, the same on a rerun."""
        return int(content_id("generator", self.seed, round, self.version), 16) % (2**31)

    # ------------------------------------------------------------------ checkpoints

    def save(self, directory: str | Path) -> Path:
        """Model, tokenizer and version into `directory`, replacing it atomically."""

        def write(tmp: Path) -> None:
            save_model(self.model, self.tokenizer, tmp)  # a LoRA model saves its adapter only
            state = {
                "format": STATE_FORMAT,
                "version": self.version,
                "name": self.name,
                "base_model": None if self.base_model_path is None else str(self.base_model_path),
            }
            (tmp / STATE_FILE).write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")

        return replace_dir_atomically(directory, write)

    def load(self, directory: str | Path) -> Generator:
        """Replace the model, tokenizer and version with those saved in `directory`."""

        directory = Path(directory)
        state_file = directory / STATE_FILE
        if not state_file.is_file():
            raise ValueError(f"no Generator checkpoint at '{directory}' ({STATE_FILE} missing)")
        state = json.loads(state_file.read_text())
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"{state_file}: format {state.get('format')!r}, this code reads format {STATE_FORMAT}")
        if self.base_model_path is None:
            self.model, self.tokenizer = load_model_and_tokenizer(directory, device=self.device)
        else:
            self.model, self.tokenizer = self._base_with_adapter(directory)
        self.version = int(state["version"])
        return self

    @staticmethod
    def is_checkpoint(directory: str | Path) -> bool:
        return (Path(directory) / STATE_FILE).is_file()


class GeneratorRole:
    """The Generator with its world bound, built from the config (what the Ray actor hosts). On a
    world without an oracle its drafts come back unlabelled (`Generator.propose`).

    Every update is saved to `work_dir/vNNNN` (its version, on this node) and its files travel
    back with the metrics: the driver keeps them in the run directory (curriculum/rundir.py) and
    sends them back to `restore`, so a run killed between an update and the end of its stage can
    go back one version, and a restarted actor (which starts untrained) comes back to its version.
    """

    def __init__(self, config: Config, work_dir: str | Path, device: str = "cpu") -> None:
        self.config = config
        self.work_dir = Path(work_dir)
        self.device = device
        self.generator = self._fresh()
        self.oracle = world_for(config).oracle()

    def _fresh(self) -> Generator:
        config = self.config
        base = config.model.path if config.model.kind == "hf" else None
        return Generator(
            base,
            config.model.tiny,
            config.generator,
            self.work_dir,
            seed=config.experiment.seed,
            lora_cfg=config.model.lora,
            device=self.device,
            dtype=config.model.dtype,
        )

    def _folder(self, version: int) -> Path:
        return self.work_dir / f"v{version:04d}"

    @property
    def version(self) -> int:
        return self.generator.version

    def restore(self, version: int, checkpoint: FolderFiles | None = None) -> int:
        """Go back (or forward) to `version` from its `checkpoint` (the files `train` answered with);
        0 is the untrained model of the seed and needs none."""
        if version == self.version:
            return version
        if version == 0:
            self.generator = self._fresh()
            return 0
        if checkpoint is None:
            raise ValueError(f"no Generator checkpoint of version {version} was given")
        self.generator.load(checkpoint.write(self._folder(version)))
        if self.version != version:
            raise ValueError(f"the Generator checkpoint sent as version {version} holds version {self.version}")
        return self.version

    def train(self, examples: Sequence[tuple[Problem, Problem, float]]) -> tuple[dict[str, float], FolderFiles | None]:
        """Weighted SFT (`Generator.train`); the metrics, and the new version's checkpoint files
        (None: no examples, nothing changed)."""
        take_peak_memory_gib()  # the peak of this round's training only
        with out_of_memory_names(
            "Generator", "generator.micro_batch_size (or set generator.gradient_checkpointing=true)"
        ):
            metrics = self.generator.train(examples)
        metrics["peak_gpu_memory_gib"] = take_peak_memory_gib()
        if not examples:
            return metrics, None
        start = time.perf_counter()
        for old in self.work_dir.glob("v[0-9][0-9][0-9][0-9]"):  # the driver keeps the versions
            shutil.rmtree(old, ignore_errors=True)
        saved = FolderFiles.read(self.generator.save(self._folder(self.version)))
        metrics["save_seconds"] = time.perf_counter() - start  # a checkpoint write (bench/overhead.py)
        return metrics, saved

    def propose(self, parents: Sequence[Problem], n: int, round: int) -> tuple[list[Problem], list[RejectedDraft]]:
        return self.generator.propose(parents, n, self.oracle, round)


@contextmanager
def _kept_global_rng() -> Iterator[None]:
    """Trainer.train reseeds Python, NumPy and torch globally; give the caller its RNG state back."""
    import numpy as np
    import torch

    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=range(torch.cuda.device_count()) if torch.cuda.is_available() else []):
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
