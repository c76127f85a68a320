"""Click options made from a typed config dataclass, and the one precedence rule of every command:

    the command line  >  the config file  >  the dataclass default.

Each option takes its type, choices and the default shown in ``--help`` from its field, so a default lives in one
place (the dataclass). Options are declared with ``default=None``: a value counts as given when it came from the
command line, or from the ``photossl`` group's global options (``photossl --device cpu finetune ...``, passed down
as click's ``default_map``); what is not given is left to the config file, then to the dataclass.

The config module is read without importing its package when that package is not imported yet (the packages pull
in torch and xarray), so ``--help`` stays instant.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import click
from click.core import ParameterSource

# Where a value counts as given: typed by the user on this command's line or on the group's (global options).
GIVEN = (ParameterSource.COMMANDLINE, ParameterSource.DEFAULT_MAP)


def config_module(name: str) -> ModuleType:
    """Module ``name`` (``photossl.<package>.<module>``, a module of config dataclasses that imports nothing heavy).

    An imported module is returned as is. Otherwise its file is run on its own under a private name, which skips
    the ``__init__`` of its package; the classes it defines are used for their fields only (defaults, types,
    choices), never instantiated.
    """
    if name in sys.modules:
        return sys.modules[name]
    private = f"photossl.cli._fields_of_{name.replace('.', '_')}"
    if private in sys.modules:
        return sys.modules[private]
    import photossl

    path = Path(photossl.__file__).parent.joinpath(*name.split(".")[1:]).with_suffix(".py")
    if not path.is_file():  # not a plain file on disk (a zip import): import it the usual way
        return importlib.import_module(name)
    spec = importlib.util.spec_from_file_location(private, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[private] = module  # dataclasses and get_type_hints look the module up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(private, None)
        raise
    return module


def _number(value: float) -> str:
    """1.0 -> '1', 0.25 -> '0.25', 0.001 -> '1e-3': the shortest of plain and scientific notation."""
    value = float(value)
    if value.is_integer():
        return str(int(value))
    plain = repr(value)
    mantissa, _, exponent = f"{value:e}".partition("e")
    scientific = f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return scientific if len(scientific) < len(plain) else plain


def format_default(value: Any) -> str | None:
    """How ``--help`` shows a default: on/off, numbers as written in the docs, sequences comma-separated; None for
    None (nothing shown)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, (list, tuple)):
        return ",".join(format_default(item) or "none" for item in value)
    return str(value)


def field_default(field: dataclasses.Field) -> Any:
    """A dataclass field's default value (calling its default_factory); None when it has none."""
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def help_with_default(help: str, shown: str | None, choices: tuple | None = None) -> str:
    """``help`` with the default: at ``{default}`` if it has one, else as `` [shown]`` before the final period;
    ``{choices}`` becomes the field's choices, comma-separated."""
    if choices is not None:
        help = help.replace("{choices}", ", ".join(map(str, choices)))
    if shown is None:
        return help
    if "{default}" in help:
        return help.replace("{default}", shown)
    if help.endswith("."):
        return f"{help[:-1]} [{shown}]."
    return f"{help} [{shown}]"


def _scalar(annotation: Any) -> Any:
    """``X`` of ``X | None``; the annotation itself otherwise."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


@dataclass(frozen=True)
class FieldOption:
    """How one config field appears on the command line (see :meth:`ConfigOptions.option`)."""

    field: str
    param: str
    parse: Callable[[Any], Any] | None
    shown: str | None = None  # the default --help shows
    from_field: bool = False  # whether ``shown`` is the field's default (else a text for a computed default)

    def value(self, raw: Any) -> Any:
        """The config value of what click parsed: ``parse(raw)``, paths as text, the rest as is."""
        if self.parse is not None:
            return self.parse(raw)
        return str(raw) if isinstance(raw, Path) else raw


class ConfigOptions:
    """The options of one command that set fields of config dataclass ``module.class_name``.

    ``options.option(field, help, ...)`` decorates the command like ``click.option``; in the command,
    ``options.merge(ctx, from_file)`` gives the config values by the precedence rule (the dataclass fills the rest
    when the config is built).
    """

    def __init__(self, module: str, class_name: str):
        self.module_name, self.class_name = module, class_name
        self.fields: dict[str, FieldOption] = {}

    @property
    def module(self) -> ModuleType:
        return config_module(self.module_name)

    @property
    def config_class(self) -> type:
        return getattr(self.module, self.class_name)

    def field(self, name: str) -> dataclasses.Field:
        fields = {f.name: f for f in dataclasses.fields(self.config_class)}
        if name not in fields:
            raise KeyError(f"{self.class_name} has no field '{name}'")
        return fields[name]

    def option(self, name: str, help: str, *decls: str, type: Any = None, parse: Callable | None = None,
               default_text: str | None = None, show_default: bool = True, choices: tuple | None = None,
               metavar: str | None = None) -> Callable:
        """A ``click.option`` for config field ``name``.

        ``decls``: the option's names (default ``--field-name``; a bool field gets ``--name/--no-name``).
        ``type``: the click type (default: from the field's annotation; a str field with choices, from its
        metadata or ``choices``, is a click.Choice). ``parse``: turns the command-line value into the config value
        (comma-separated lists, ...). The help shows the field's default; ``show_default=False`` shows none, and
        ``default_text`` shows that text instead (for a default that depends on other fields).
        """
        field = self.field(name)
        annotation = _scalar(typing.get_type_hints(self.config_class)[name])
        choices = choices if choices is not None else field.metadata.get("choices")
        if not decls:
            flag = "--" + name.replace("_", "-")
            decls = (f"{flag}/--no-{flag[2:]}",) if annotation is bool else (flag,)
        if type is None and annotation is not bool:
            if annotation is str and choices is not None:
                type = click.Choice(list(choices))
            else:
                type = {int: click.INT, float: click.FLOAT}.get(annotation, click.STRING)
        shown = default_text if default_text is not None else (
            format_default(field_default(field)) if show_default else None)
        spec = FieldOption(name, name, parse, shown, default_text is None and shown is not None)
        self.fields[spec.param] = spec
        extra = {"metavar": metavar} if metavar is not None else {}
        if type is not None:
            extra["type"] = type
        return click.option(*decls, name, default=None, help=help_with_default(help, shown, choices), **extra)

    def given(self, ctx: click.Context) -> dict[str, Any]:
        """Config values of the options given on the command line (the command's or the group's), parsed."""
        values = {}
        for spec in self.fields.values():
            if ctx.get_parameter_source(spec.param) in GIVEN and ctx.params.get(spec.param) is not None:
                values[spec.field] = spec.value(ctx.params[spec.param])
        return values

    def merge(self, ctx: click.Context, from_file: dict[str, Any] | None = None) -> dict[str, Any]:
        """The config values by the precedence rule: what the command line gives over ``from_file`` (a config
        file's mapping); the dataclass supplies everything neither sets."""
        return {**(from_file or {}), **self.given(ctx)}
