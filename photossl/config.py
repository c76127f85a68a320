"""Typed dataclass configs: load from YAML/dicts with unknown keys and wrong types rejected."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, TypeVar

from photossl.errors import PhotosslError

ConfigT = TypeVar("ConfigT")
# Field metadata of a setting that steers how a run executes (device, threads, progress bars, ...), not what it
# computes: a finished run stays valid whatever these say.
EXECUTION: dict[str, Any] = {"execution": True}


def execution_fields(config: Any) -> frozenset[str]:
    """Names of the fields of a config dataclass (class or instance) whose metadata marks them :data:`EXECUTION`."""
    return frozenset(f.name for f in dataclasses.fields(config) if f.metadata.get("execution"))


def settings(config: Any) -> dict[str, Any]:
    """:func:`config_to_dict` of ``config`` without its execution fields: what its result depends on."""
    skip = execution_fields(config)
    return {k: v for k, v in config_to_dict(config).items() if k not in skip}


def shipped_pipelines() -> dict[str, Path]:
    """The pipeline configs shipped with photossl (``pipelines/*.yaml``), by name (file name without .yaml)."""
    from importlib.resources import files

    folder = Path(str(files("photossl") / "pipelines"))
    if not folder.is_dir():
        folder = Path(__file__).resolve().parents[1] / "pipelines"
    return {path.stem: path for path in sorted(folder.glob("*.yaml"))}


def resolve_config_file(path: str | Path) -> Path:
    """``path`` itself when it exists; else the shipped pipeline it names (``dos-quick``, ``pipelines/dos-quick.yaml``
    or ``dos-quick.yaml``), so the documented commands run from any folder and from a wheel install."""
    path = Path(path)
    if path.exists():
        return path
    shipped = shipped_pipelines()
    name = path.stem if path.suffix in (".yaml", ".yml") else path.name
    if name in shipped and (len(path.parts) == 1 or path.parent.name == "pipelines"):
        return shipped[name]
    if len(path.parts) == 1 and path.suffix == "":
        import difflib

        close = difflib.get_close_matches(name, list(shipped), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"shipped pipelines: {', '.join(shipped)}"
        raise PhotosslError(f"no config file {path} and no shipped pipeline '{name}' ({hint})")
    return path


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing, unreadable or non-mapping file raises PhotosslError."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise PhotosslError(f"cannot read config file {path}: {err.strerror or err}") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as err:
        first_line = str(err).splitlines()[0] if str(err) else "invalid YAML"
        raise PhotosslError(f"config file {path} is not valid YAML: {first_line}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise PhotosslError(f"config file {path} must hold a mapping of keys to values")
    return loaded


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, key)
            except PhotosslError as err:
                errors.append(str(err))
        raise PhotosslError(errors[0] if errors else f"config key '{key}': bad value {value!r}")
    if origin in (list, tuple):
        if isinstance(value, (str, int, float)):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise PhotosslError(f"config key '{key}' must be a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_coerce(item, inner, key) for item in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise PhotosslError(f"config key '{key}' must be a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise PhotosslError(f"config key '{key}' must be a mapping, got {value!r}")
        return build_config(annotation, value, prefix=f"{key}.")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise PhotosslError(f"config key '{key}' must be true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise PhotosslError(f"config key '{key}' must be an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PhotosslError(f"config key '{key}' must be a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise PhotosslError(f"config key '{key}' must be a string, got {value!r}")
        return value
    return value


def build_config(cls: type[ConfigT], values: dict[str, Any], prefix: str = "") -> ConfigT:
    """Build dataclass ``cls`` from ``values``; unknown keys and ill-typed values raise PhotosslError.

    Each field's ``metadata["choices"]`` (if any) restricts its allowed values.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    normalised = {str(k).replace("-", "_"): v for k, v in values.items()}
    unknown = sorted(set(normalised) - set(fields))
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], sorted(fields), n=1, cutoff=0.6)
        if close:
            hint = f"did you mean '{prefix}{close[0]}'?"
        elif len(fields) <= 12:
            hint = "allowed: " + ", ".join(sorted(fields))
        else:
            hint = f"not one of the {len(fields)} fields of {cls.__module__}.{cls.__qualname__}"
        raise PhotosslError(f"unknown config key '{prefix}{unknown[0]}' ({hint})")
    kwargs = {}
    for name, value in normalised.items():
        coerced = _coerce(value, hints[name], prefix + name)
        choices = fields[name].metadata.get("choices")
        if choices is not None:
            members = coerced if isinstance(coerced, (list, tuple)) else [coerced]
            for member in members:
                if member not in choices:
                    raise PhotosslError(
                        f"config key '{prefix}{name}' must be one of {', '.join(map(str, choices))}; got {member!r}"
                    )
        kwargs[name] = coerced
    config = cls(**kwargs)
    validate = getattr(config, "validate", None)
    if callable(validate):
        validate()
    return config


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain-dict view of a dataclass config (tuples become lists) for YAML/JSON/attributes."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {k: plain(v) for k, v in dataclasses.asdict(config).items()}
