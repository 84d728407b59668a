"""Prompt templates of the LLM workflows: YAML files under configs/prompts/ with named fields.

A prompt file holds a `system` and a `user` template written with `{field}` placeholders (Python
format syntax; `{{` is a literal brace), plus optional `texts` (named snippets the workflow puts
into a field, e.g. what "harder" means). Each workflow step says which fields it fills; a
template that names another field is refused in one line when the run starts. Templates are
part of the recipe: the run copies them into its directory (`save_prompts`), reads them from
there on resume, and logs them to MLflow; every audited call names its template by id@sha.
"""

from __future__ import annotations

import hashlib
import shutil
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from curriculum.errors import CurriculumError

PACKAGE_CONFIGS = Path(__file__).resolve().parents[3] / "configs"


class PromptError(CurriculumError):
    """A prompt file that cannot be used; the message is one line naming the file."""


@dataclass(frozen=True)
class Prompt:
    """One template pair. `render(**fields)` gives chat messages as (role, text) pairs."""

    id: str  # e.g. teacher_write
    path: str
    system: str
    user: str
    sha: str  # of the file's text
    texts: Mapping[str, str] = field(default_factory=dict)

    @property
    def template(self) -> str:
        """What an audited call names: id@first 8 hex digits of the file's sha256."""
        return f"{self.id}@{self.sha[:8]}"

    def fields(self) -> set[str]:
        return _placeholders(self.system) | _placeholders(self.user)

    def render(self, **values: Any) -> list[tuple[str, str]]:
        """(role, text) messages. Values are inserted as text once: braces in them (model output,
        a question) are never read as placeholders."""
        return [
            (role, template.format_map(_Strict(values, self)))
            for role, template in (("system", self.system), ("user", self.user))
            if template.strip()
        ]


class _Strict(dict):
    def __init__(self, values: Mapping[str, Any], prompt: Prompt):
        super().__init__({k: str(v) for k, v in values.items()})
        self.prompt = prompt

    def __missing__(self, key: str) -> str:
        raise PromptError(f"prompt {self.prompt.path} uses {{{key}}}, which this step does not fill")


def _placeholders(template: str) -> set[str]:
    try:
        return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template) if name}
    except ValueError as exc:  # a single brace
        raise PromptError(f"bad placeholder syntax ({exc}); write a literal brace as {{{{ or }}}}") from None


def resolve(path: str, base: Path | None = None) -> Path:
    """A prompt path of the config: absolute; else under `base` (a run's prompts folder); else
    relative to the working directory; else to the package's configs/ folder."""
    given = Path(path)
    if given.is_absolute():
        return given
    if base is not None:
        return base / given.name
    if given.is_file():
        return given
    return PACKAGE_CONFIGS / given


def load(
    path: str | Path, fields: set[str] | frozenset[str], base: Path | None = None, check_fields: bool = True
) -> Prompt:
    """Read and check one prompt file: it must name only `fields`."""
    file = resolve(str(path), base)
    if not file.is_file():
        raise PromptError(f"prompt file not found: {file} (from the config's '{path}')")
    text = file.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PromptError(f"cannot parse prompt {file}: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict) or not isinstance(data.get("user"), str):
        raise PromptError(f"prompt {file} must be a mapping with a `user` template (and optionally `system`, `texts`)")
    unknown = set(data) - {"system", "user", "texts", "description"}
    if unknown:
        raise PromptError(
            f"prompt {file}: unknown key(s) {', '.join(sorted(unknown))} (known: system, user, texts, description)"
        )
    texts = data.get("texts") or {}
    if not isinstance(texts, dict) or not all(isinstance(v, str) for v in texts.values()):
        raise PromptError(f"prompt {file}: `texts` must map names to strings")
    prompt = Prompt(
        id=file.stem,
        path=str(file),
        system=str(data.get("system") or ""),
        user=data["user"],
        sha=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        texts={str(k): v for k, v in texts.items()},
    )
    try:
        named = prompt.fields()
    except PromptError as exc:
        raise PromptError(f"prompt {file}: {exc}") from None
    extra = named - set(fields) if check_fields else set()
    if extra:
        raise PromptError(
            f"prompt {file} uses {', '.join('{' + f + '}' for f in sorted(extra))}, which this step "
            f"does not fill (it fills: {', '.join(sorted(fields))})"
        )
    return prompt


def save_prompts(paths: Mapping[str, str], folder: Path) -> Path:
    """Copy the prompt files a run uses into `folder` (the run directory's prompts/; once: a resumed
    run keeps the copies it started with) and return it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names: dict[str, tuple[str, str]] = {}
    for step, path in paths.items():  # the copies sit side by side: their names must differ
        other = names.setdefault(Path(path).name, (step, path))
        if other[1] != path:
            raise PromptError(
                f"prompts {other[1]} ({other[0]}) and {path} ({step}) have the same file name; rename one"
            )
    for path in paths.values():
        target = folder / Path(path).name
        if not target.exists():
            source = resolve(path)
            if not source.is_file():
                raise PromptError(f"prompt file not found: {source} (from the config's '{path}')")
            tmp = target.with_name(f".{target.name}.tmp")
            shutil.copyfile(source, tmp)
            tmp.replace(target)
    return folder


def as_text(messages: list[tuple[str, str]]) -> str:
    """The rendered prompt as one string (what the calls table stores and hashes)."""
    return "\n\n".join(f"[{role}]\n{text}" for role, text in messages)


def prompt_hash(messages: list[tuple[str, str]]) -> str:
    return hashlib.sha256(as_text(messages).encode("utf-8", errors="replace")).hexdigest()[:16]
