"""The whole experiment config (`Config`): one field per section, and the checks that span sections."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from curriculum.config.base import Section, band_edge_error
from curriculum.config.data import DatasetSpec, DecontaminationConfig
from curriculum.config.experiment import ExperimentConfig, TrackingConfig
from curriculum.config.health import HealthConfig
from curriculum.config.learner import GeneratorConfig, LearnerConfig
from curriculum.config.model import ModelConfig, PretrainConfig
from curriculum.config.ray import RayConfig
from curriculum.config.selection import LoopConfig, SelectionConfig
from curriculum.config.solver import EvaluationConfig, HFSolverConfig, SolverConfig, VerifierConfig
from curriculum.config.storage import CheckpointConfig, StoreConfig
from curriculum.config.synthesis import SynthesisConfig, WeaknessConfig
from curriculum.config.teacher import LLMTeacherConfig, SymbolicTeacherConfig, TeacherConfig
from curriculum.config.world import ArithmeticWorldConfig, DatasetWorldConfig, WorldConfig

# The sections with one variant per kind of thing, and the key that names the variant.
VARIANT_TAGS = {"world": "name", "teacher": "kind", "solver": "engine"}


def default_variant(section: str) -> str:
    """The variant a section is when it does not say (its default's tag)."""
    default = Config.model_fields[section].default
    return str(default.model_dump(include={VARIANT_TAGS[section]})[VARIANT_TAGS[section]])


class Config(Section):
    """The whole experiment; one section per field, each in its own module of this package."""

    experiment: ExperimentConfig = ExperimentConfig()
    model: ModelConfig = ModelConfig()
    world: WorldConfig = ArithmeticWorldConfig()
    pretrain: PretrainConfig = PretrainConfig()
    solver: SolverConfig = HFSolverConfig()
    verifier: VerifierConfig = VerifierConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    selection: SelectionConfig = SelectionConfig()
    teacher: TeacherConfig = SymbolicTeacherConfig()
    generator: GeneratorConfig = GeneratorConfig()
    learner: LearnerConfig = LearnerConfig()
    weakness: WeaknessConfig = WeaknessConfig()
    synthesis: SynthesisConfig = SynthesisConfig()
    loop: LoopConfig = LoopConfig()
    ray: RayConfig = RayConfig()
    tracking: TrackingConfig = TrackingConfig()
    store: StoreConfig = StoreConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    data_root: str = Field(default="../shared/data/benchmarks", description="relative dataset paths start here")
    datasets: dict[str, DatasetSpec] = Field(default_factory=dict)
    decontamination: DecontaminationConfig = DecontaminationConfig()
    health: HealthConfig = HealthConfig()

    @model_validator(mode="before")
    @classmethod
    def _default_variants(cls, data: Any) -> Any:
        """A section that does not name its variant (`world.name`, ...) is the default one."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for section, tag in VARIANT_TAGS.items():
            value = data.get(section)
            if isinstance(value, dict) and tag not in value:
                data[section] = {**value, tag: default_variant(section)}
        return data

    @model_validator(mode="after")
    def _eval_sets_are_datasets(self) -> Config:
        for name in self.decontamination.eval_sets:
            if name not in self.datasets:
                known = ", ".join(sorted(self.datasets)) or "none"
                raise ValueError(f"decontamination.eval_sets: '{name}' is not a dataset in `datasets` (known: {known})")
        return self

    @model_validator(mode="after")
    def _world_can_host_the_recipe(self) -> Config:
        """The symbolic Teacher and symbolic SwS synthesis need a world with mutation operators and an
        oracle (arithmetic); real problem sets have neither. The Generator there needs the LLM Teacher."""
        world = self.world
        if not isinstance(world, DatasetWorldConfig):
            return self
        for name in [*world.seed_sets, *world.heldout_sets, *world.heldout_size]:
            if name not in self.datasets:
                known = ", ".join(sorted(self.datasets)) or "none"
                raise ValueError(f"world: '{name}' is not a dataset in `datasets` (known: {known})")
        needs = "needs a world with mutation operators and an oracle (world.name=arithmetic)"
        if self.teacher.enabled and self.teacher.kind == "symbolic":
            raise ValueError(
                f"teacher.kind=symbolic {needs}; on world.name=dataset set teacher.kind=llm or teacher.enabled=false"
            )
        if self.synthesis.enabled and self.synthesis.kind == "symbolic":
            raise ValueError(
                f"synthesis.kind=symbolic {needs}; on world.name=dataset set synthesis.kind=llm or "
                "synthesis.enabled=false"
            )
        teacher = self.llm_teacher
        if self.generator.enabled and (
            teacher is None or not teacher.enabled or (teacher.serve is None and not teacher.endpoint.base_url)
        ):  # no oracle answers its questions: the LLM Teacher's labeller votes, and it learns from the Teacher
            raise ValueError(
                "generator.enabled=true on world.name=dataset learns from the LLM Teacher and has its labeller "
                "vote the answers: set teacher.enabled=true, teacher.kind=llm and teacher.endpoint.base_url or "
                "teacher.serve.model (or generator.enabled=false)"
            )
        if self.model.kind == "tiny":
            raise ValueError(
                "model.kind=tiny is pretrained on the arithmetic world; on world.name=dataset use "
                "model.kind=hf with model.path"
            )
        return self

    @property
    def llm_teacher(self) -> LLMTeacherConfig | None:
        """The LLM Teacher's settings (`teacher.kind: llm`), or None for the symbolic Teacher."""
        return self.teacher if isinstance(self.teacher, LLMTeacherConfig) else None

    @property
    def solvers_sleep_while_learning(self) -> bool:
        """`solver.sleep_while_learning`, with auto decided from the GPUs the roles ask for (its description)."""
        setting = self.solver.sleep_while_learning
        if setting != "auto":
            return setting
        solver, learner = self.ray.solver.num_gpus, self.ray.learner.num_gpus
        return solver > 0 and learner > 0 and (self.ray.in_process or (solver < 1 and learner < 1))

    @property
    def uses_llm_teacher(self) -> bool:
        """Whether the run needs the Teacher's model: the LLM Teacher, or LLM synthesis (which uses it)."""
        return (self.teacher.enabled and self.teacher.kind == "llm") or (
            self.synthesis.enabled and self.synthesis.kind == "llm"
        )

    @model_validator(mode="after")
    def _llm_teacher_has_a_model(self) -> Config:
        teacher = self.llm_teacher
        if self.synthesis.enabled and self.synthesis.kind == "llm" and teacher is None:
            raise ValueError(
                "synthesis.kind=llm writes with the Teacher's model: set teacher.kind=llm and its "
                "teacher.endpoint or teacher.serve (teacher.enabled may stay false)"
            )
        if teacher is None:
            return self
        if self.uses_llm_teacher and teacher.serve is None and not teacher.endpoint.base_url:
            raise ValueError(
                "teacher.kind=llm needs teacher.endpoint.base_url (an OpenAI-compatible server) or "
                "teacher.serve.model (the run serves it with vLLM)"
            )
        if teacher.serve is not None and self.ray.teacher.num_gpus > 0:
            raise ValueError(
                "with teacher.serve the Teacher's GPUs are teacher.serve.num_gpus; leave ray.teacher.num_gpus at 0"
            )
        return self

    @model_validator(mode="after")
    def _gpus_fit_roles(self) -> Config:
        gpus = self.ray.solver.num_gpus
        if gpus > 1 and self.solver.engine == "hf":
            # transformers' generate runs on one device: the other GPUs of the bundle would sit idle
            # (splitting layers over GPUs with device_map would serialise them, slower than one GPU)
            raise ValueError(
                f"ray.solver.num_gpus={gpus:g} with solver.engine=hf: the hf engine samples on one GPU; set "
                "solver.engine=vllm (tensor parallel over the GPUs) or ray.solver.count for one GPU per Solver"
            )
        workers = self.ray.learner.count
        if workers > 1:
            if self.learner.algorithm == "grpo":
                step, key = self.learner.grpo.groups_per_step * self.solver.attempts, "learner.grpo.groups_per_step"
                key += " x solver.attempts"
            else:
                step, key = self.learner.batch_size, "learner.batch_size"
            if step % workers:
                raise ValueError(
                    f"{key}={step} does not split evenly over ray.learner.count={workers} data-parallel "
                    "workers; make it a multiple of the worker count"
                )
        return self

    @model_validator(mode="after")
    def _bands_fit_attempts(self) -> Config:
        sel, k = self.selection, self.solver.attempts
        _check_band("selection", ("seed_band_low", sel.seed_band_low), ("seed_band_high", sel.seed_band_high), k)
        _check_band("selection", ("band_low", sel.band_low), ("band_high", sel.band_high), k)
        if self.synthesis.enabled and self.synthesis.budget >= self.loop.problems_per_round:
            raise ValueError(
                f"synthesis.budget={self.synthesis.budget} must be below loop.problems_per_round="
                f"{self.loop.problems_per_round}: the drafts' screening comes out of the round's attempts"
            )
        error = band_edge_error(self.teacher.unsolved_below, k, "teacher.unsolved_below")
        if error:
            raise ValueError(error)
        synthesis = self.synthesis
        _check_band("synthesis", ("band_low", synthesis.band_low), ("band_high", synthesis.band_high), k)
        if self.learner.algorithm == "grpo":  # the filter band only matters (and is checked) for GRPO
            if k < 2:
                raise ValueError(f"learner.algorithm=grpo needs solver.attempts >= 2 (a group), got {k}")
            grpo = self.learner.grpo  # its default edges (None) are 1/k and 1 - 1/k, multiples of 1/k
            _check_band("learner.grpo", ("filter_low", grpo.filter_low), ("filter_high", grpo.filter_high), k)
            micro, step = self.learner.micro_batch_size, grpo.groups_per_step * k
            if micro is not None and micro < step and step % micro:
                raise ValueError(
                    f"learner.micro_batch_size={micro} must divide a GRPO step of learner.grpo.groups_per_step x "
                    f"solver.attempts = {grpo.groups_per_step} x {k} = {step} sequences"
                )
        return self

    @model_validator(mode="after")
    def _async_can_overlap(self) -> Config:
        """loop.mode=async trains on attempts sampled one version back while the Solvers sample the
        next round: the learner must correct for that, and sampling must be able to run meanwhile."""
        if self.loop.mode != "async":
            return self
        if self.learner.algorithm == "sft":
            raise ValueError(
                "loop.mode=async trains on attempts one policy version old, and learner.algorithm=sft imitates "
                "them with no correction; use learner.algorithm=grpo (importance-sampled) or dpo, or loop.mode=sync"
            )
        if self.learner.algorithm == "grpo" and self.learner.grpo.importance_sampling == "off":
            raise ValueError(
                "loop.mode=async needs learner.grpo.importance_sampling on (the attempts' recorded sampling "
                "log-probs correct for the older policy that drew them); set it to sequence_mask or use loop.mode=sync"
            )
        if self.solvers_sleep_while_learning:
            raise ValueError(
                "loop.mode=async samples while the Learner trains, but the Solvers sleep then "
                "(solver.sleep_while_learning resolves to true: they share the Learner's GPU); give the Solvers "
                "GPUs of their own (ray.solver.num_gpus=1) and set solver.sleep_while_learning=false, or loop.mode=sync"
            )
        return self


def _check_band(prefix: str, low: tuple[str, float | None], high: tuple[str, float | None], attempts: int) -> None:
    """A band's edges (key, value; None: the default) are ordered and multiples of 1/attempts."""
    (low_key, low_value), (high_key, high_value) = low, high
    if low_value is not None and high_value is not None and low_value > high_value:
        raise ValueError(f"{prefix}.{low_key}={low_value} is above {prefix}.{high_key}={high_value}")
    for key, value in (low, high):
        error = None if value is None else band_edge_error(value, attempts, f"{prefix}.{key}")
        if error:
            raise ValueError(error)
