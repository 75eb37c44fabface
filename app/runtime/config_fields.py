"""The configuration's keys as something to edit: type, default, meaning, choices.

The Settings dialog is built from these, never from a list of its own: every key comes from the
configuration's dataclasses (:mod:`takeover.app.runtime.config` and the sections it reuses, such
as the SpaceMouse's), its meaning from the docstring under the field, and a changed value is
checked by building the configuration exactly as a file is loaded (:func:`with_settings`), so the
dialog refuses what the file would, with the same words.

Values are edited as text: numbers and strings as they are, lists as comma-separated items
(``1.0, 1.0, 0.5``), lists of lists in TOML's inline form (``["W", 0, 1.0], ["S", 0, -1.0]``);
an empty text leaves an optional value unset.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import itertools
import textwrap
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import tomlkit

from takeover.app.runtime.config import (
    OPERATORS,
    RENDER_MODES,
    STATION_KINDS,
    AppConfig,
    config_data,
    config_from_data,
    type_name,
)
from takeover.recorder.settings import ENCODERS

CHOICES: dict[str, tuple[str, ...]] = {
    "station.kind": STATION_KINDS,
    "station.render": RENDER_MODES,
    "recorder.encoder": ENCODERS,
    "operator.kind": OPERATORS,
}
"""Keys whose value is one of a few names (the configuration checks the same tuples)."""


@dataclass(frozen=True)
class Setting:
    """One key of the configuration, e.g. ``spacemouse.axis_map``."""

    key: str
    hint: Any
    """Its type, as the dataclass declares it."""
    default: Any
    doc: str
    """The docstring under the field ('' if it has none)."""
    choices: tuple[str, ...] = ()

    @property
    def type_text(self) -> str:
        return type_name(self.hint)


def section_settings(section: str, exclude: tuple[str, ...] = ()) -> list[Setting]:
    """Every scalar or list key of ``[section]`` (a nested table is left out), in declaration order."""
    cls = _section_class(section)
    hints = typing.get_type_hints(cls)
    docs = attribute_docs(typing.cast(Any, cls))
    defaults = config_data(cls())
    out = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if f.name in exclude or dataclasses.is_dataclass(hint):
            continue
        key = f"{section}.{f.name}"
        out.append(Setting(key, hint, defaults[f.name], docs.get(f.name, ""), CHOICES.get(key, ())))
    return out


def setting(key: str) -> Setting:
    """The setting of one dotted key (KeyError if the configuration has no such key)."""
    section = key.rpartition(".")[0]
    found = [s for s in section_settings(section) if s.key == key]
    if not found:
        raise KeyError(key)
    return found[0]


def _section_class(section: str) -> type[Any]:
    cls: type[Any] = AppConfig
    for part in section.split("."):
        hint = typing.get_type_hints(cls).get(part)
        if hint is None or not dataclasses.is_dataclass(hint):
            raise KeyError(f"no section [{section}] in the configuration")
        cls = typing.cast(type[Any], hint)
    return cls


@functools.cache
def attribute_docs(cls: Any) -> dict[str, str]:
    """Field name -> the string literal right under it in the class body (its docstring)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def current_value(config: AppConfig, key: str) -> Any:
    """The value of a dotted key in ``config``, as TOML-shaped data (tuples as lists)."""
    value: Any = config_data(config)
    for part in key.split("."):
        value = value[part]
    return value


def with_settings(config: AppConfig, values: Mapping[str, Any], source: str = "settings") -> AppConfig:
    """``config`` with some dotted keys set, checked as a file is (ConfigError names the key)."""
    data = config_data(config)
    for key, value in values.items():
        *sections, name = key.split(".")
        table = data
        for part in sections:
            table = table[part]
        table[name] = value
    return config_from_data(data, source)


# -- text ---------------------------------------------------------------------------------------
def _union_args(hint: Any) -> tuple[Any, ...]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return typing.get_args(hint)
    return ()


def _is_scalar_list(hint: Any) -> bool:
    args = typing.get_args(hint)
    return (
        typing.get_origin(hint) is tuple
        and len(args) == 2
        and args[1] is Ellipsis
        and args[0] in (str, int, float, bool)
    )


def value_text(value: Any, hint: Any) -> str:
    """How a value is shown for editing (see the module's docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value)
    if _is_scalar_list(hint):
        item = typing.get_args(hint)[0]
        return ", ".join(value_text(v, item) for v in value)
    return ", ".join(tomlkit.item(config_data(v)).as_string() for v in value)


def text_value(text: str, hint: Any) -> Any:
    """The value a text stands for, as TOML would give it; text that is no such value comes back
    as it is, so that the configuration's check refuses it with its own words."""
    text = text.strip()
    union = _union_args(hint)
    if union:
        if text == "" and type(None) in union:
            return None
        if int in union and _literal(text) is not None and isinstance(_literal(text), int):
            return _literal(text)
        if str in union:
            return text
        parsed = _literal(text)
        return text if parsed is None else parsed
    if hint is str:
        return text
    if typing.get_origin(hint) is tuple:
        if _is_scalar_list(hint):
            item = typing.get_args(hint)[0]
            return [text_value(part, item) for part in text.split(",")] if text else []
        parsed = _literal(f"[{text}]")
        return text if parsed is None else parsed
    parsed = _literal(text)
    return text if parsed is None else parsed


def _literal(text: str) -> Any:
    """A TOML value written inline, or None if ``text`` is not one."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return None
