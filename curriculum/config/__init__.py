"""The whole experiment config: YAML -> OmegaConf -> frozen pydantic models, one module per section.

Each default lives in its section's model and only there. Sections that differ by kind are
discriminated unions keyed by the key that names the kind (`world.name`, `teacher.kind`,
`solver.engine`). Importing this package does not import torch, Ray or TRL, so the CLI can reject a
bad config in milliseconds.
"""

from curriculum.config.base import BOXED_INSTRUCTION, ConfigError, Extraction, Mutation, Section, band_edge_error
from curriculum.config.data import DatasetSpec, DecontaminationConfig
from curriculum.config.experiment import ExperimentConfig, TrackingConfig
from curriculum.config.health import HealthConfig
from curriculum.config.learner import GeneratorConfig, GRPOSettings, LearnerConfig, RetentionConfig
from curriculum.config.loading import RETIRED_KEYS, flatten, from_dict, load_config, to_yaml
from curriculum.config.model import LoraConfig, ModelConfig, PretrainConfig, TinyModelConfig
from curriculum.config.ray import RayConfig, RoleResources
from curriculum.config.root import VARIANT_TAGS, Config
from curriculum.config.selection import LoopConfig, SelectionConfig
from curriculum.config.solver import (
    EvaluationConfig,
    HFSolverConfig,
    SolverConfig,
    SolverSettings,
    VerifierConfig,
    VLLMConfig,
    VLLMSolverConfig,
)
from curriculum.config.synthesis import SynthesisConfig, SynthesisPrompts, WeaknessConfig
from curriculum.config.teacher import (
    EndpointConfig,
    LabelConfig,
    LLMTeacherConfig,
    ServeConfig,
    SymbolicTeacherConfig,
    TeacherConfig,
    TeacherPrompts,
    TeacherSettings,
)
from curriculum.config.world import ArithmeticWorldConfig, DatasetWorldConfig, WorldConfig, WorldSettings

__all__ = [
    "BOXED_INSTRUCTION",
    "RETIRED_KEYS",
    "VARIANT_TAGS",
    "ArithmeticWorldConfig",
    "Config",
    "ConfigError",
    "DatasetSpec",
    "DatasetWorldConfig",
    "DecontaminationConfig",
    "EndpointConfig",
    "EvaluationConfig",
    "ExperimentConfig",
    "Extraction",
    "GRPOSettings",
    "GeneratorConfig",
    "HFSolverConfig",
    "HealthConfig",
    "LLMTeacherConfig",
    "LabelConfig",
    "LearnerConfig",
    "LoopConfig",
    "LoraConfig",
    "ModelConfig",
    "Mutation",
    "PretrainConfig",
    "RayConfig",
    "RetentionConfig",
    "RoleResources",
    "Section",
    "SelectionConfig",
    "ServeConfig",
    "SolverConfig",
    "SolverSettings",
    "SymbolicTeacherConfig",
    "SynthesisConfig",
    "SynthesisPrompts",
    "TeacherConfig",
    "TeacherPrompts",
    "TeacherSettings",
    "TinyModelConfig",
    "TrackingConfig",
    "VLLMConfig",
    "VLLMSolverConfig",
    "VerifierConfig",
    "WeaknessConfig",
    "WorldConfig",
    "WorldSettings",
    "band_edge_error",
    "flatten",
    "from_dict",
    "load_config",
    "to_yaml",
]
