"""teacher: who writes new problems from the Solver's failures, one variant per kind (`teacher.kind`),
and the LLM Teacher's endpoint, server, labelling and prompts."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from curriculum.config.base import Extraction, Mutation, Section, mutation_kinds

# The response_format an endpoint is asked for, strictest first.
StructuredOutput = Literal["json_schema", "json_object", "none"]


class EndpointConfig(Section):
    """An OpenAI-compatible chat endpoint (a vLLM server, an API) and how it is called.

    The API key is never written here: `api_key_env` names the environment variable that holds it.
    """

    base_url: str | None = Field(
        default=None, description="e.g. http://127.0.0.1:8000/v1; none with teacher.serve (the run's own server)"
    )
    model: str | None = Field(
        default=None, description="the model name the endpoint serves; with teacher.serve: teacher.serve.served_name"
    )
    api_key_env: str | None = Field(
        default=None, description="NAME of the environment variable holding the API key; none: no key (a local server)"
    )
    timeout_s: float = Field(default=120.0, gt=0, description="seconds one call may take")
    max_concurrency: int = Field(default=8, ge=1, description="calls in flight at once")
    max_attempts: int = Field(default=3, ge=1, description="tries per workflow step on transport and parse errors")
    retry_backoff_s: float = Field(default=1.0, ge=0, description="wait before the first retry (doubles each time)")
    structured_output: StructuredOutput = Field(
        default="json_schema",
        description="response_format asked of the endpoint; the reply is parsed tolerantly either way",
    )
    temperature: float = Field(default=0.7, ge=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    max_tokens: int = Field(default=1024, ge=1, description="most tokens of one reply")

    @model_validator(mode="after")
    def _key_is_a_name(self) -> EndpointConfig:
        if self.api_key_env is not None and not self.api_key_env.replace("_", "").isalnum():
            raise ValueError(
                "api_key_env must be the NAME of an environment variable (e.g. OPENAI_API_KEY), never the key itself"
            )
        return self


class ServeConfig(Section):
    """A vLLM OpenAI-compatible server the run starts on 127.0.0.1 for its Teacher (agents/serve.py)."""

    model: str = Field(description="a model folder or hub id")
    served_name: str = Field(default="teacher", description="the model name clients ask for")
    num_gpus: float = Field(
        default=0.0,
        ge=0,
        description="GPUs of the server's bundle in the placement group; above 1 the server splits the "
        "model over them (--tensor-parallel-size num_gpus, a whole number)",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto", description="auto: float32 on CPU, the model's own dtype on a GPU"
    )
    max_model_len: int | None = Field(default=4096, ge=64)
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1)
    enforce_eager: bool = Field(default=False, description="skip graph compilation (faster start, slower calls)")
    cpu_kvcache_gib: int = Field(default=1, ge=1, description="VLLM_CPU_KVCACHE_SPACE on a CPU server")
    startup_timeout_s: float = Field(default=600.0, gt=0, description="seconds until /health must answer")
    max_restarts: int = Field(default=2, ge=0, description="times a dead server is started again")
    structured_outputs_backend: str = Field(default="xgrammar", description="vLLM --structured-outputs-config backend")
    extra_args: list[str] = Field(default_factory=list, description="more `vllm serve` arguments")
    env: dict[str, str] = Field(default_factory=dict, description="more environment variables of the server")

    @property
    def tensor_parallel_size(self) -> int:
        """GPUs the server splits the model over (`--tensor-parallel-size`): num_gpus, at least 1."""
        return max(1, int(self.num_gpus))

    @model_validator(mode="after")
    def _tensor_parallel_from_num_gpus(self) -> ServeConfig:
        if self.num_gpus > 1 and self.num_gpus != int(self.num_gpus):
            raise ValueError(
                f"teacher.serve.num_gpus={self.num_gpus:g}: above 1 it is the server's tensor-parallel size, a "
                "whole number of GPUs"
            )
        given = extra_tensor_parallel_size(self.extra_args)
        if given is not None and given != str(self.tensor_parallel_size):
            raise ValueError(
                f"teacher.serve.extra_args sets --tensor-parallel-size {given} but teacher.serve.num_gpus="
                f"{self.num_gpus:g} sets it to {self.tensor_parallel_size}; drop it from extra_args"
            )
        return self


def extra_tensor_parallel_size(args: list[str]) -> str | None:
    """The tensor-parallel size a `vllm serve` argument list sets (`--tensor-parallel-size N`, `-tp N`
    or `--tensor-parallel-size=N`), or None."""
    for index, arg in enumerate(args):
        name, equals, value = arg.partition("=")
        if name in ("--tensor-parallel-size", "-tp"):
            return value if equals else (args[index + 1] if index + 1 < len(args) else "")
    return None


class LabelConfig(Section):
    """Reference answers by majority vote of sampled solutions (SwS: at least 4 of 8 agree)."""

    samples: int = Field(default=8, ge=1, description="solutions sampled per draft")
    min_agreement: int = Field(default=4, ge=1, description="equivalent answers needed to label a draft")
    endpoint: EndpointConfig | None = Field(default=None, description="the labeller; default: the Teacher's")
    temperature: float = Field(default=0.7, ge=0)
    max_tokens: int = Field(default=1024, ge=1)
    extraction: Extraction = Field(default="boxed", description="how an answer is read from a sampled solution")
    prompt: str = Field(
        default="prompts/label.yaml", description="relative: to the working directory, else to the package's configs/"
    )

    @model_validator(mode="after")
    def _agreement_fits(self) -> LabelConfig:
        if self.min_agreement > self.samples:
            raise ValueError(f"min_agreement={self.min_agreement} is above samples={self.samples}")
        if self.endpoint is not None and not (self.endpoint.base_url and self.endpoint.model):
            raise ValueError(
                "a labeller endpoint needs base_url and model (leave it out to label with the Teacher's model)"
            )
        return self


class TeacherPrompts(Section):
    diagnose: str = "prompts/teacher_diagnose.yaml"
    write: str = "prompts/teacher_write.yaml"


class TeacherSettings(Section):
    """What every Teacher is told: which failures it rewrites and into what kinds of variant."""

    enabled: bool = Field(default=True, description="rewrite failed problems each round (Socratic-Zero)")
    mutations: list[Mutation] = Field(
        default_factory=mutation_kinds("harder", "sibling"),
        min_length=1,
        description="variants of a failure the Solver partly solves, in turn",
    )
    # A failure the Solver (almost) never solves gets variants of its own size or smaller: a harder
    # one would be further out of reach and teach nothing (multiple of 1/solver.attempts).
    unsolved_below: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="a failure solved less often than this is out of reach and gets `unsolved_mutations`",
    )
    unsolved_mutations: list[Mutation] = Field(default_factory=mutation_kinds("sibling", "easier"), min_length=1)
    variants_per_failure: int = Field(default=2, ge=1)
    max_failures: int = Field(default=32, ge=1, description="failed problems the Teacher rewrites per round")


class SymbolicTeacherConfig(TeacherSettings):
    """`teacher.kind: symbolic`: the world's mutation operators (roles/teacher/symbolic.py)."""

    kind: Literal["symbolic"] = Field(
        default="symbolic",
        description="symbolic: the world's mutation operators; llm: a prompted model (roles/teacher/llm.py)",
    )


class LLMTeacherConfig(TeacherSettings):
    """`teacher.kind: llm`: a prompted model (roles/teacher/llm.py), also the model of synthesis.kind=llm."""

    kind: Literal["llm"] = "llm"
    endpoint: EndpointConfig = EndpointConfig()
    serve: ServeConfig | None = Field(
        default=None, description="start a vLLM server for the Teacher instead of calling endpoint.base_url"
    )
    labels: LabelConfig = LabelConfig()
    prompts: TeacherPrompts = TeacherPrompts()
    attempts_shown: int = Field(default=4, ge=0, description="failed attempts shown to the Teacher per problem")

    @model_validator(mode="after")
    def _one_endpoint(self) -> LLMTeacherConfig:
        if self.serve is not None and self.endpoint.base_url:
            raise ValueError(
                "set teacher.endpoint.base_url (an existing server) or teacher.serve (the run starts one), not both"
            )
        if self.endpoint.base_url and not self.endpoint.model:
            raise ValueError("teacher.endpoint.base_url needs teacher.endpoint.model (the model name it serves)")
        return self


TeacherConfig = Annotated[SymbolicTeacherConfig | LLMTeacherConfig, Field(discriminator="kind")]
