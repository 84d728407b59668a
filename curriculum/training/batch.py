"""What the loop hands a Learner each round (`LearnBatch`) and what it gets back: the round's
outcome (`LearnOutcome`) and, once published, the new policy (`PolicyRef`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from curriculum.files import FolderFiles
from curriculum.records import GradedGroup, PreferencePair

# What a Solver needs of a published version (PEFT's adapter; vLLM and PEFT load exactly these).
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


# One problem of the round with its prompt and its graded attempts (a GRPO group).
Group = GradedGroup


@dataclass(frozen=True)
class LearnBatch:
    """What a round gives the Learner: groups in the order the curriculum selected them."""

    round: int
    policy_version: int  # the version that sampled the attempts
    groups: tuple[Group, ...]


@dataclass
class LearnOutcome:
    metrics: dict[str, float]
    pairs: list[PreferencePair] = field(default_factory=list)  # records the store keeps (DPO only)


@dataclass(frozen=True)
class PolicyRef:
    """A published policy version, as a Solver loads it in one call: the version, a digest of its
    adapter files, where the Learner published them (`uri`, a folder on the Learner's machine) and
    the files themselves, which travel with the reference through Ray's object store, so a Solver
    on another machine needs no shared filesystem (a LoRA adapter is a few MB)."""

    version: int
    digest: str
    uri: str
    files: FolderFiles

    @classmethod
    def read(cls, version: int, folder: str | Path) -> PolicyRef:
        """The reference of the adapter published in `folder` (FileNotFoundError: it is not there)."""
        files = FolderFiles.read(folder, ADAPTER_FILES)
        digest = hashlib.sha256()
        for name, data in sorted(files.files.items()):
            digest.update(name.encode() + b"\0" + data)
        return cls(version, digest.hexdigest()[:16], str(folder), files)
