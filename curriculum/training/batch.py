"""What the loop hands a Learner each round (`LearnBatch`) and what it gets back: the round's
outcome (`LearnOutcome`) and, once published, the new policy (`PolicyRef`)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
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
    policy_version: int  # the version the Learner holds and updates (sync mode: the one that sampled them)
    groups: tuple[Group, ...]
    # Earlier rounds' verified successes (learner.retention.replay_per_level): one correct attempt
    # each, trained on as anchors only (training/retention.py), never as pairs or groups.
    replay: tuple[Group, ...] = ()

    def staleness(self, group: Group) -> int:
        """How many versions before `policy_version` the group's oldest attempt was sampled."""
        return self.policy_version - min((a.policy_version for a in group.attempts), default=self.policy_version)

    def drop_stale(self, max_staleness: int) -> tuple[LearnBatch, int]:
        """This batch without the groups sampled more than `max_staleness` versions back (async mode,
        loop.max_staleness), and how many it dropped."""
        fresh = tuple(g for g in self.groups if self.staleness(g) <= max_staleness)
        return replace(self, groups=fresh), len(self.groups) - len(fresh)


@dataclass
class LearnOutcome:
    metrics: dict[str, float]
    pairs: list[PreferencePair] = field(default_factory=list)  # records the store keeps (DPO only)


@dataclass(frozen=True)
class PolicyRef:
    """A published policy version, as a Solver loads it in one call: the version, a digest of its
    adapter files, where the Learner published them (`uri`, a folder on the Learner's node; None
    for a version read back from the run directory, which only the driver's node sees) and the
    files themselves, which travel with the reference through Ray's object store, so a Solver
    on another machine needs no shared filesystem (a LoRA adapter is a few MB).

    The Learner's `publish` answers with every file of the published folder (adapter and
    optimizer state: its checkpoint), which the driver writes into the run directory and sends
    back to a restored Learner (curriculum/rundir.py); Solvers are sent `adapter()` only."""

    version: int
    digest: str
    uri: str | None
    files: FolderFiles

    @classmethod
    def read(cls, version: int, folder: str | Path, names: Sequence[str] | None = ADAPTER_FILES) -> PolicyRef:
        """The reference of the policy published in `folder`: `names` of its files (None: all of
        them, a checkpoint); FileNotFoundError when it is not there."""
        files = FolderFiles.read(folder, names)
        missing = [name for name in ADAPTER_FILES if name not in files.files]
        if missing:
            raise FileNotFoundError(f"'{folder}' has no {', '.join(missing)}")
        digest = hashlib.sha256()
        for name in ADAPTER_FILES:
            digest.update(name.encode() + b"\0" + files.files[name])
        return cls(version, digest.hexdigest()[:16], str(folder), files)

    def adapter(self) -> PolicyRef:
        """What a Solver needs of it: the adapter's files only."""
        return replace(self, files=self.files.only(ADAPTER_FILES))

    def detached(self) -> PolicyRef:
        """The same files, with no folder to look for them in (read from the driver's run directory)."""
        return replace(self, uri=None)
