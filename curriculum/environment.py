"""What a number depends on besides the code and the config: the CPU's numeric code paths, the
library versions, the lock file, the machine. Recorded with every base model and run.

The same float32 computation gives different bits on different x86 CPUs because torch picks its
vectorised kernels by the instruction sets it finds (ATen: AVX2 or AVX-512) and MKL picks its
GEMM code path by CPU model and vendor. The toy model's greedy evaluation and its sampled
rounds amplify a last-bit difference into different problems right or wrong, so `make run` gave
one table on one kind of CPU and another elsewhere. `pin_cpu_numerics` fixes both choices
before torch is loaded: ATen's AVX2 kernels and MKL's AVX2 code path (MKL_CBWR, its conditional
numerical reproducibility), the same machine code on every x86-64 CPU that has AVX2. On the
AMD EPYC machines the README was measured on these are the libraries' own choices (same bits,
same speed); an AVX-512 machine gives up its wider kernels to compute the same bits.
"""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path
from typing import Any

# Set before torch is imported (they are read when its libraries load). A value the user set wins.
PINNED_NUMERICS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}
# The libraries whose versions change what a base model or a run computes.
LIBRARIES = (
    "torch",
    "transformers",
    "trl",
    "peft",
    "accelerate",
    "datasets",
    "tokenizers",
    "safetensors",
    "numpy",
    "ray",
    "math-verify",
)
LOCK_FILE = Path(__file__).resolve().parents[1] / "requirements" / "cpu.txt"


def pin_cpu_numerics() -> dict[str, str]:
    """Fix torch's and MKL's CPU code paths for this process and the processes it starts (Ray's
    workers inherit the environment). Does nothing on a CPU without AVX2 or once torch is loaded
    (too late to matter; the settings in force are what `numerics()` reports)."""
    import sys

    if "torch" not in sys.modules and platform.machine() in ("x86_64", "AMD64") and _has_avx2():
        for name, value in PINNED_NUMERICS.items():
            os.environ.setdefault(name, value)
    return numerics()


def numerics() -> dict[str, str]:
    """The CPU numeric settings in force (empty values: the libraries' own choice)."""
    return {name: os.environ.get(name, "") for name in PINNED_NUMERICS}


def _has_avx2() -> bool:
    try:
        return " avx2" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def library_versions() -> dict[str, str | None]:
    import importlib.metadata as metadata

    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def file_digest(path: str | Path, length: int = 12) -> str | None:
    """sha256 of a file's bytes (first `length` hex digits); None if it does not exist."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:length]
    except FileNotFoundError:
        return None


def source_digest(modules: list[str], length: int = 12) -> str:
    """sha256 over the source files of `modules` (dotted names), in the given order."""
    import importlib.util

    digest = hashlib.sha256()
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ValueError(f"no source for module {name}")
        digest.update(name.encode() + b"\0" + Path(spec.origin).read_bytes() + b"\0")
    return digest.hexdigest()[:length]


def weights_fingerprint(folder: str | Path, length: int = 12) -> str:
    """sha256 over a saved model's tensors (names, dtypes, shapes and bytes, sorted by name): equal
    fingerprints mean bit-identical weights, whatever metadata the file carries."""
    from safetensors import safe_open

    digest = hashlib.sha256()
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no .safetensors weights in '{folder}'")
    for file in files:
        with safe_open(str(file), framework="pt") as weights:
            for name in sorted(weights.keys()):
                tensor = weights.get_tensor(name).contiguous()
                digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
                digest.update(tensor.view(-1).view(dtype=_byte_dtype()).numpy().tobytes())
    return digest.hexdigest()[:length]


def _byte_dtype() -> Any:
    import torch

    return torch.uint8


def describe() -> dict[str, Any]:
    """Everything above, for results.json and the base model's marker file."""
    import torch

    return {
        "cpu": cpu_model(),
        "machine": platform.machine(),
        "threads": torch.get_num_threads(),
        "numerics": numerics(),
        "libraries": library_versions(),
        "lock": file_digest(LOCK_FILE),
        "python": platform.python_version(),
    }
