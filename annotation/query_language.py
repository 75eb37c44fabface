"""The curation query language: what a query is (kinds of fields, operators, the tree), how it is
written out and what it matches. :mod:`takeover.annotation.query_parser` reads it.

A query is a boolean expression over fields, e.g.::

    label in (success, near-success) and interventions >= 1 and operator == "ada" and date >= 2026-12-01

Grammar (keywords in any case)::

    query      := "" | expr
    expr       := conj ("or" conj)*
    conj       := neg ("and" neg)*
    neg        := "not" neg | "(" expr ")" | "all" | FIELD | FIELD OP VALUE
                | FIELD ["not"] "in" "(" VALUE ("," VALUE)* ")"
    OP         := "==" | "=" | "!=" | "<" | "<=" | ">" | ">=" | "~" | "!~"
    VALUE      := NUMBER[unit] | DATE | "quoted text" | word | none | true | false

A bare field is a yes/no field asked to be true. Which operators and values a field takes depends
on its kind (:class:`Kind`); the parser checks them, so a query that parses can be evaluated.
Every tree has one written form (:func:`to_text`) that parses back to it.
The fields themselves are declared by the caller (:mod:`takeover.annotation.curation` declares
the episode fields); this module knows only their kinds.

Semantics: ``==`` on a field without a value (``none``) is false unless the value asked is
``none``; ``!=``, ``not in`` and ``!~`` are the exact complements of ``==``, ``in`` and ``~``;
``<``-style comparisons of a field without a value are false. ``~`` is "contains", ignoring case.
A set field (e.g. the annotators) equals a value when it holds it.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from takeover.storage.errors import StorageError


class Kind(enum.StrEnum):
    """What a field holds, and so which operators and values it takes."""

    TEXT = "text"
    """Free text (a task, an operator): ==, !=, in, ~ (contains), quoted or a bare word."""
    WORD = "word"
    """A word from a vocabulary (an outcome, an end reason): ==, !=, in; 'near-success' is 'near_success'."""
    NUMBER = "number"
    """A number: every comparison."""
    DATE = "date"
    """A calendar day (local time), written 2026-12-01: every comparison."""
    TIME = "time"
    """A moment (local time), written 2026-12-01 or 2026-12-01T14:30[:00]: every comparison."""
    BOOL = "yes/no"
    """True or false: bare (``has_intervention``), or == true / false."""
    SET = "set"
    """A set of words (annotators, tags): == (holds), !=, in (holds any), ~ (one contains)."""


class Unit(enum.StrEnum):
    """How a number field reads its values."""

    PLAIN = "plain"
    PERCENT = "percent"
    """In percent (0..100); ``50%`` is 50."""
    FRACTION = "fraction"
    """A fraction (0..1); ``50%`` is 0.5."""
    SECONDS = "seconds"
    """In seconds; ``90s``, ``1.5min``, ``2h`` and ``500ms`` are read."""


@dataclass(frozen=True)
class FieldSpec:
    """A field a query may name."""

    name: str
    kind: Kind
    doc: str
    unit: Unit = Unit.PLAIN
    words: tuple[str, ...] = ()
    """For a WORD field: the words it may hold ('' = any word)."""
    nullable: bool = False
    """The field may have no value (``none``)."""
    aliases: tuple[str, ...] = ()


class Op(enum.StrEnum):
    EQ = "=="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    IN = "in"
    NOT_IN = "not in"
    HAS = "~"
    NOT_HAS = "!~"


ORDERED = (Op.LT, Op.LE, Op.GT, Op.GE)
OPS: dict[Kind, tuple[Op, ...]] = {
    Kind.TEXT: (Op.EQ, Op.NE, Op.IN, Op.NOT_IN, Op.HAS, Op.NOT_HAS),
    Kind.WORD: (Op.EQ, Op.NE, Op.IN, Op.NOT_IN),
    Kind.NUMBER: (Op.EQ, Op.NE, *ORDERED, Op.IN, Op.NOT_IN),
    Kind.DATE: (Op.EQ, Op.NE, *ORDERED, Op.IN, Op.NOT_IN),
    Kind.TIME: (Op.EQ, Op.NE, *ORDERED),
    Kind.BOOL: (Op.EQ, Op.NE),
    Kind.SET: (Op.EQ, Op.NE, Op.IN, Op.NOT_IN, Op.HAS, Op.NOT_HAS),
}
"""The operators each kind of field takes."""

Value = str | int | float | bool | dt.date | dt.datetime | None


# -- the tree ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Compare:
    field: str
    """The field's name (never an alias)."""
    op: Op
    values: tuple[Value, ...]
    """One value, or the list of ``in`` / ``not in``."""


@dataclass(frozen=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    inner: Node


@dataclass(frozen=True)
class Everything:
    """The empty query (``all``): every episode."""


Node = Compare | And | Or | Not | Everything


class QueryError(StorageError):
    """A query that cannot be read: one line, and where (``caret()`` draws it under the query)."""

    def __init__(self, message: str, text: str, position: int) -> None:
        self.message = message
        self.text = text
        self.position = max(0, min(position, len(text)))
        super().__init__(f"{message} (column {self.position + 1})")

    def caret(self, indent: str = "  ") -> str:
        """The query on one line and a ``^`` under the column where it goes wrong."""
        line = self.text.replace("\n", " ").replace("\t", " ")
        return f"{indent}{line}\n{indent}{' ' * self.position}^"


# -- printing ------------------------------------------------------------------------------------
WORD = r"[^\W\d][\w.\-:/@+]*"
"""A bare word: a letter or underscore, then letters, digits and ``_ - . : / @ +``."""
KEYWORDS = ("and", "or", "not", "in", "all", "none", "true", "false")
_BARE_WORD = re.compile(rf"{WORD}\Z")
_PRECEDENCE = {Or: 1, And: 2, Not: 3}


def to_text(node: Node, fields: Sequence[FieldSpec]) -> str:
    """The query as text that parses back to the same tree (``parse(to_text(q)) == q``)."""
    kinds = {f.name: f for f in fields}
    return _text(node, kinds, 0)


def _text(node: Node, fields: Mapping[str, FieldSpec], outer: int) -> str:
    if isinstance(node, Everything):
        return "all"
    if isinstance(node, Compare):
        return _compare_text(node, fields[node.field])
    prec = _PRECEDENCE[type(node)]
    if isinstance(node, Not):
        out = f"not {_text(node.inner, fields, prec)}"
    else:
        word = "or" if isinstance(node, Or) else "and"
        # left-associative: a right operand of the same precedence needs its parentheses
        out = f"{_text(node.left, fields, prec)} {word} {_text(node.right, fields, prec + 1)}"
    return f"({out})" if prec < outer else out


def _compare_text(node: Compare, spec: FieldSpec) -> str:
    if spec.kind is Kind.BOOL and node.op is Op.EQ and node.values == (True,):
        return node.field
    shown = [value_text(v, spec) for v in node.values]
    if node.op in (Op.IN, Op.NOT_IN):
        return f"{node.field} {node.op} ({', '.join(shown)})"
    return f"{node.field} {node.op} {shown[0]}"


def value_text(value: Value, spec: FieldSpec) -> str:
    """A value as the query language writes it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if spec.kind is Kind.WORD:
        value = value.replace("_", "-") if spec.words else value
    if _BARE_WORD.match(value) and value.lower() not in KEYWORDS:
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


# -- evaluation ----------------------------------------------------------------------------------
Predicate = Callable[[Any], bool]


def matcher(node: Node, fields: Sequence[FieldSpec]) -> Predicate:
    """A function telling whether a record (an object with an attribute per field) matches."""
    specs = {f.name: f for f in fields}
    return _predicate(node, specs)


def _predicate(node: Node, specs: Mapping[str, FieldSpec]) -> Predicate:
    if isinstance(node, Everything):
        return lambda r: True
    if isinstance(node, Not):
        inner = _predicate(node.inner, specs)
        return lambda r: not inner(r)
    if isinstance(node, And):
        a, b = _predicate(node.left, specs), _predicate(node.right, specs)
        return lambda r: a(r) and b(r)
    if isinstance(node, Or):
        a, b = _predicate(node.left, specs), _predicate(node.right, specs)
        return lambda r: a(r) or b(r)
    return _comparison(node, specs[node.field])


def _comparison(node: Compare, spec: FieldSpec) -> Predicate:
    get = attrgetter(spec.name)
    values = [v.timestamp() if isinstance(v, dt.datetime) else v for v in node.values]
    op = node.op
    if op in (Op.NE, Op.NOT_IN, Op.NOT_HAS):
        positive = {Op.NE: Op.EQ, Op.NOT_IN: Op.IN, Op.NOT_HAS: Op.HAS}[op]
        inner = _comparison(Compare(node.field, positive, node.values), spec)
        return lambda r: not inner(r)
    if op is Op.HAS:
        needle = str(values[0]).casefold()
        if spec.kind is Kind.SET:
            return lambda r: any(needle in str(x).casefold() for x in get(r))
        return lambda r: (x := get(r)) is not None and needle in str(x).casefold()
    if op in (Op.EQ, Op.IN):
        if spec.kind is Kind.SET:
            wanted = set(values)
            empty_ok = None in wanted
            return lambda r: bool(wanted.intersection(get(r))) or (empty_ok and not get(r))
        if len(values) == 1:
            v = values[0]
            return lambda r: _same(get(r), v)
        return lambda r: any(_same(get(r), v) for v in values)
    v = values[0]
    compare: Callable[[Any, Any], bool] = {
        Op.LT: lambda x, y: x < y,
        Op.LE: lambda x, y: x <= y,
        Op.GT: lambda x, y: x > y,
        Op.GE: lambda x, y: x >= y,
    }[op]
    return lambda r: (x := get(r)) is not None and compare(x, v)


def _same(x: Any, v: Value) -> bool:
    if v is None or x is None:
        return x is None and v is None
    return bool(x == v)
