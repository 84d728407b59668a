"""Reading a config: YAML recipes (with their `include:` lists) -> OmegaConf -> `key=value` overrides ->
the frozen `Config`, every error one line that names the key and the file; and writing it back.

Run directories saved by earlier versions still load: their retired keys and their sections' keys of
other variants are dropped where they hold the default those versions wrote (`RETIRED_KEYS`,
`_without_other_variants`), and refused with a line saying what to remove otherwise.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pydantic import BaseModel, ValidationError

from curriculum.config.base import BOXED_INSTRUCTION, ConfigError
from curriculum.config.root import VARIANT_TAGS, Config, default_variant


def _sections(annotation: Any) -> list[type[BaseModel]]:
    """The section classes a field holds: its own, or each variant of a union (None left out)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    args = get_args(annotation)
    if get_origin(annotation) is Annotated:
        return _sections(args[0])
    if get_origin(annotation) in (Union, UnionType):
        return [section for arg in args for section in _sections(arg)]
    return []


def _valid_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for name, field in model.model_fields.items():
        dotted = f"{prefix}{name}"
        keys.append(dotted)
        for section in _sections(field.annotation):
            keys.extend(key for key in _valid_keys(section, dotted + ".") if key not in keys)
    return keys


def _variants(section: str) -> dict[str, type[BaseModel]]:
    """Tag -> variant class of a section with variants (`VARIANT_TAGS`)."""
    tag = VARIANT_TAGS[section]
    classes = _sections(Config.model_fields[section].annotation)
    return {str(cls.model_fields[tag].default): cls for cls in classes}


def _owner(section: str, key: str) -> str | None:
    """The tag of the one variant of `section` that has `key`, if only one has it."""
    owners = [tag for tag, cls in _variants(section).items() if key in cls.model_fields]
    return owners[0] if len(owners) == 1 else None


def _suggest(key: str, model: type[BaseModel]) -> str:
    candidates = _valid_keys(model)
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    if not close:  # compare the last segment among siblings
        parent, _, leaf = key.rpartition(".")
        siblings = [c for c in candidates if c.rpartition(".")[0] == parent]
        leaves = difflib.get_close_matches(leaf, [s.rpartition(".")[2] for s in siblings], n=1, cutoff=0.5)
        close = [f"{parent}.{leaves[0]}" if parent else leaves[0]] if leaves else []
    return f" (did you mean '{close[0]}'?)" if close else ""


def _format_error(err: Mapping[str, Any], data: dict[str, Any], source: str) -> str:
    parts = list(err["loc"])
    if len(parts) > 1 and parts[0] in VARIANT_TAGS and str(parts[1]) in _variants(str(parts[0])):
        variant = str(parts.pop(1))  # pydantic names the variant in the location: the user did not write it
        if err["type"] == "extra_forbidden" and len(parts) > 1:
            section, key, tag = str(parts[0]), str(parts[1]), VARIANT_TAGS[str(parts[0])]
            owner = _owner(section, key)
            if owner is not None and owner != variant:
                return (
                    f"config key '{section}.{key}' applies to {section}.{tag}={owner} only, and {source} has "
                    f"{section}.{tag}={variant}: remove it"
                )
    if err["type"] == "union_tag_invalid" and len(parts) == 1 and parts[0] in VARIANT_TAGS:
        section = str(parts[0])
        tag = VARIANT_TAGS[section]
        found = data.get(section, {}).get(tag) if isinstance(data.get(section), dict) else None
        options = " or ".join(repr(name) for name in _variants(section))
        return f"invalid config key '{section}.{tag}' = {found!r} in {source}: Input should be {options}"
    loc = [str(part) for part in parts]
    key = ".".join(loc)
    if err["type"] == "extra_forbidden":
        return f"unknown config key '{key}'{_suggest(key, Config)} in {source}"
    if err["type"] == "missing":
        return f"missing config key '{key}' in {source}"
    value: Any = data
    for part in parts:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            value = None
            break
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    where = f"config key '{key}'" if key else "config"
    shown = f" = {value!r}" if key else ""
    return f"invalid {where}{shown} in {source}: {msg}"


# Keys earlier versions had, which every run directory's saved config.yaml still holds: at the value
# those versions wrote by default they are dropped, so such a run resumes and evaluates; set to
# anything else they are refused as unknown keys (their setting no longer exists).
RETIRED_KEYS: dict[tuple[str, ...], Any] = {
    ("evaluation", "instruction"): BOXED_INSTRUCTION,  # curriculum eval asks in the world's format now
    ("datasets", "*", "completion_extraction"): "auto",  # a model's answer is read by world.extraction
    ("datasets", "*", "id_field"): None,  # ids derive from the question
}


def _without_retired(data: dict[str, Any]) -> dict[str, Any]:
    """`data` less the retired keys that hold their old default (copied where changed)."""

    def drop(node: Any, path: tuple[str, ...], default: Any) -> Any:
        if not isinstance(node, dict):
            return node
        head, rest = path[0], path[1:]
        names = list(node) if head == "*" else [head] if head in node else []
        if not rest:
            return {k: v for k, v in node.items() if not (k in names and v == default)}
        return {k: drop(v, rest, default) if k in names else v for k, v in node.items()}

    for path, default in RETIRED_KEYS.items():
        data = drop(data, path, default)
    return data


def _without_other_variants(data: dict[str, Any]) -> dict[str, Any]:
    """`data` less the keys of a section's other variants that hold those variants' defaults: earlier
    versions had one class per section and wrote every key of it into a run directory's config.yaml
    (world.families of a dataset world, teacher.endpoint of a symbolic Teacher, ...). Set to anything
    else, such a key is refused with the line that says which variant it belongs to."""
    out = dict(data)
    for section, tag in VARIANT_TAGS.items():
        node = out.get(section)
        if not isinstance(node, dict):
            continue
        variants = _variants(section)
        own = variants.get(str(node.get(tag, default_variant(section))))
        if own is None:
            continue
        defaults = {
            key: value
            for cls in variants.values()
            if cls is not own
            for key, value in cls.model_construct().model_dump(mode="json").items()
            if key not in own.model_fields
        }
        out[section] = {k: v for k, v in node.items() if not (k in defaults and _plain(v) == defaults[k])}
    return out


def _plain(value: Any) -> Any:
    """A YAML value as `model_dump(mode="json")` writes it (mapping keys as strings)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def from_dict(data: dict[str, Any], source: str = "<dict>") -> Config:
    data = _without_other_variants(_without_retired(data))
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc.errors()[0], data, source)) from None


def _load_yaml(path: Path, seen: tuple[Path, ...] = ()) -> Any:
    """Load one YAML file, first merging the files its `include:` list names (relative to it)."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path.resolve() in seen:
        raise ConfigError(f"config include cycle at {path}")
    try:
        node = OmegaConf.load(path)
    except Exception as exc:  # noqa: BLE001 - yaml scanner/parser errors have no common base
        raise ConfigError(f"cannot parse {path}: {' '.join(str(exc).split())}") from None
    if not OmegaConf.is_dict(node) or "include" not in node:
        return node
    includes = node.pop("include")
    if isinstance(includes, str):
        includes = [includes]
    merged = OmegaConf.create({})
    for name in includes:
        merged = OmegaConf.merge(merged, _load_yaml(path.parent / str(name), seen + (path.resolve(),)))
    return OmegaConf.merge(merged, node)


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML recipe (and its includes), apply `key=value` overrides, and validate."""
    path = Path(path)
    base = _load_yaml(path)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like key=value")
    if not OmegaConf.is_dict(base):
        raise ConfigError(f"{path} must hold a mapping of config sections, not {type(base._content).__name__}")
    merged = base
    for item in overrides:  # one at a time, so an error names the override
        try:
            override = OmegaConf.from_dotlist([item])
            key = item.split("=", 1)[0]
            value = OmegaConf.select(override, key)
            if isinstance(value, (DictConfig, ListConfig)):
                merged = OmegaConf.merge(merged, override)
            else:  # a plain value replaces what is there (e.g. one held-out count for a per-level mapping)
                merged = merged.copy()
                OmegaConf.update(merged, key, value, merge=False)
        except (OmegaConfBaseException, TypeError, ValueError) as exc:
            raise ConfigError(
                f"override '{item}' does not fit what {path} has there: {str(exc).splitlines()[0]}"
            ) from None
    try:
        data = OmegaConf.to_container(merged, resolve=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"bad override or interpolation in {path}: {str(exc).splitlines()[0]}") from None
    source = str(path) + (" with overrides" if overrides else "")
    return from_dict(data, source)


def to_yaml(config: Config) -> str:
    return str(OmegaConf.to_yaml(OmegaConf.create(config.model_dump(mode="json"))))


def flatten(config: Config) -> dict[str, Any]:
    """Dotted keys -> values, for MLflow params."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            out[prefix] = value

    walk("", config.model_dump(mode="json"))
    return out
