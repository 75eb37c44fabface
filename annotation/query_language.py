"""The curation query language: parse, print and evaluate expressions over episode fields.

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
The fields themselves are declared by the caller (:mod:`takeover.annotation.curation` declares
the episode fields); this module knows only their kinds.

Semantics: ``==`` on a field without a value (``none``) is false unless the value asked is
``none``; ``!=``, ``not in`` and ``!~`` are the exact complements of ``==``, ``in`` and ``~``;
``<``-style comparisons of a field without a value are false. ``~`` is "contains", ignoring case.
A set field (e.g. the annotators) equals a value when it holds it.

The parser is a small recursive-descent parser over a hand-written tokenizer: the grammar is a
dozen lines, and its errors must point at the column where the query goes wrong, which is easier
done by hand than through a parser generator. Nothing is ever evaluated as Python.
"""

from __future__ import annotations

import datetime as dt
import difflib
import enum
import math
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


# -- tokens --------------------------------------------------------------------------------------
_WORD = r"[^\W\d][\w.\-:/@+]*"
_TOKENS = re.compile(
    rf"""
    (?P<space>\s+)
  | (?P<punct>[(),])
  | (?P<op>==|!=|<=|>=|!~|=|<|>|~)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<date>\d{{4}}-\d{{2}}-\d{{2}}(?:T\d{{2}}:\d{{2}}(?::\d{{2}})?)?)(?![\w.\-:])
  | (?P<number>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)(?P<unit>%|ms|min|s|h)?(?![\w.\-:])
  | (?P<word>{_WORD})
  | (?P<raw>[\w.\-+][\w.\-:/@+]*)
    """,
    re.VERBOSE,
)
_BARE_WORD = re.compile(rf"{_WORD}\Z")
KEYWORDS = ("and", "or", "not", "in", "all", "none", "true", "false")
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}
_SECONDS = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class _Token:
    kind: str
    """'punct', 'op', 'string', 'date', 'number', 'word', 'raw' (a word that starts with a digit:
    text, not a number or a date), 'end'."""
    text: str
    pos: int
    unit: str = ""

    def keyword(self, *words: str) -> bool:
        return self.kind == "word" and self.text.lower() in words


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKENS.match(text, pos)
        if m is None:
            char = text[pos]
            if char in "\"'":
                raise QueryError(f"unterminated text: the {char} that opens it is never closed", text, pos)
            raise QueryError(f"unexpected character {char!r}", text, pos)
        kind = m.lastgroup or ""
        if kind == "unit":
            kind = "number"
        if kind != "space":
            value = m.group("number") if kind == "number" else m.group(0)
            out.append(_Token(kind, value, pos, (m.group("unit") or "") if kind == "number" else ""))
        pos = m.end()
    out.append(_Token("end", "", len(text)))
    return out


def _unquote(token: _Token, text: str) -> str:
    body, out, i = token.text[1:-1], [], 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            nxt = body[i + 1]
            if nxt not in _ESCAPES:
                raise QueryError(
                    f"unknown escape \\{nxt} in quoted text (\\\\, \\\", \\', \\n and \\t are known)",
                    text,
                    token.pos + 1 + i,
                )
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


# -- parsing -------------------------------------------------------------------------------------
def field_index(fields: Sequence[FieldSpec]) -> dict[str, FieldSpec]:
    """Name or alias (lower case) -> field."""
    index: dict[str, FieldSpec] = {}
    for f in fields:
        for name in (f.name, *f.aliases):
            index[name.lower()] = f
    return index


def parse(text: str, fields: Sequence[FieldSpec]) -> Node:
    """The query ``text`` as a tree; raises :class:`QueryError` (one line, with its column)."""
    return _Parser(text, fields).query()


class _Parser:
    def __init__(self, text: str, fields: Sequence[FieldSpec]) -> None:
        self.text = text
        self.fields = field_index(fields)
        self.names = sorted({f.name for f in fields})
        self.tokens = _tokens(text)
        self.i = 0

    # -- helpers
    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def fail(self, message: str, tok: _Token | None = None) -> QueryError:
        return QueryError(message, self.text, (tok or self.tok).pos)

    @staticmethod
    def shown(tok: _Token) -> str:
        return "the end of the query" if tok.kind == "end" else repr(tok.text)

    # -- grammar
    def query(self) -> Node:
        if self.tok.kind == "end":
            return Everything()
        node = self.expr()
        if self.tok.kind != "end":
            if self.tok.text == ")":
                raise self.fail("this ')' closes no '('")
            raise self.fail(f"expected 'and', 'or' or the end of the query, got {self.shown(self.tok)}")
        return node

    def expr(self) -> Node:
        node = self.conj()
        while self.tok.keyword("or"):
            self.take()
            node = Or(node, self.conj())
        return node

    def conj(self) -> Node:
        node = self.neg()
        while self.tok.keyword("and"):
            self.take()
            node = And(node, self.neg())
        return node

    def neg(self) -> Node:
        tok = self.tok
        if tok.keyword("not"):
            self.take()
            return Not(self.neg())
        if tok.text == "(" and tok.kind == "punct":
            self.take()
            node = self.expr()
            if self.tok.text != ")":
                raise self.fail(
                    f"expected ')' to close the '(' at column {tok.pos + 1}, got {self.shown(self.tok)}"
                )
            self.take()
            return node
        if tok.keyword("all"):
            self.take()
            return Everything()
        if tok.kind != "word" or tok.text.lower() in KEYWORDS:
            raise self.fail(f"expected a field name, 'not' or '(', got {self.shown(tok)}")
        return self.comparison()

    def field(self) -> FieldSpec:
        tok = self.take()
        spec = self.fields.get(tok.text.lower())
        if spec is None:
            near = difflib.get_close_matches(tok.text.lower(), list(self.fields), n=1)
            hint = f"; did you mean {self.fields[near[0]].name!r}?" if near else ""
            raise self.fail(f"unknown field {tok.text!r}{hint} (docs/curation.md lists the fields)", tok)
        return spec

    def comparison(self) -> Node:
        start = self.tok
        spec = self.field()
        tok = self.tok
        if tok.keyword("not") and self.tokens[self.i + 1].keyword("in"):
            self.i += 2
            op = Op.NOT_IN
        elif tok.keyword("in"):
            self.take()
            op = Op.IN
        elif tok.kind == "op":
            self.take()
            op = Op.EQ if tok.text == "=" else Op(tok.text)
        elif spec.kind is Kind.BOOL:
            return Compare(spec.name, Op.EQ, (True,))
        else:
            raise self.fail(
                f"expected an operator after {start.text!r} ({_ops_text(spec)}), got {self.shown(tok)}"
            )
        if op not in OPS[spec.kind]:
            raise self.fail(f"{spec.name} is {_kind_text(spec)}: compare it with {_ops_text(spec)}", tok)
        if op in (Op.IN, Op.NOT_IN):
            if self.tok.text != "(" or self.tok.kind != "punct":
                raise self.fail(f"expected '(' and a list of values after '{op}', got {self.shown(self.tok)}")
            self.take()
            values = [self.value(spec, op)]
            while self.tok.text == "," and self.tok.kind == "punct":
                self.take()
                values.append(self.value(spec, op))
            if self.tok.text != ")":
                raise self.fail(f"expected ',' or ')' in the list of values, got {self.shown(self.tok)}")
            self.take()
            return Compare(spec.name, op, tuple(values))
        return Compare(spec.name, op, (self.value(spec, op),))

    def value(self, spec: FieldSpec, op: Op) -> Value:
        tok = self.take()
        if tok.kind in ("end", "punct", "op") or tok.keyword("and", "or", "not", "in", "all"):
            self.i -= 1
            raise self.fail(f"expected a value for {spec.name} ({_values_text(spec)}), got {self.shown(tok)}")
        if tok.keyword("none"):
            if not (spec.nullable or spec.kind is Kind.SET):
                raise self.fail(f"{spec.name} always has a value: compare it with {_values_text(spec)}", tok)
            if op in ORDERED or op in (Op.HAS, Op.NOT_HAS):
                raise self.fail(f"none is only compared with ==, !=, in or not in, not with '{op}'", tok)
            return None
        try:
            return _typed(spec, tok, self.text)
        except ValueError as exc:
            raise self.fail(f"{spec.name}: {exc}", tok) from None


def _typed(spec: FieldSpec, tok: _Token, text: str) -> Value:
    """The token as a value of ``spec``'s kind (ValueError saying what is expected)."""
    kind = spec.kind
    if kind is Kind.BOOL:
        if tok.keyword("true", "false"):
            return tok.text.lower() == "true"
        raise ValueError(f"expected true or false, got {tok.text!r}")
    if kind in (Kind.TEXT, Kind.SET):
        if tok.kind == "string":
            return _unquote(tok, text)
        return tok.text + tok.unit
    if kind is Kind.WORD:
        word = _unquote(tok, text) if tok.kind == "string" else tok.text + tok.unit
        if spec.words:  # a vocabulary: as people type it ('Near-Success' is near_success)
            word = word.strip().lower().replace("-", "_")
            if word not in spec.words:
                raise ValueError(f"expected {_values_text(spec)}, got {tok.text!r}")
        if not word:
            raise ValueError("expected a word, got empty text")
        return word
    if kind is Kind.NUMBER:
        if tok.kind != "number":
            raise ValueError(f"expected a number, got {tok.text!r}")
        return _number(spec, tok)
    if tok.kind != "date":
        raise ValueError(f"expected a date (2026-12-01), got {tok.text!r}")
    if kind is Kind.DATE:
        if "T" in tok.text:
            raise ValueError(f"a date is a day (2026-12-01), without a time; got {tok.text!r}")
        return dt.date.fromisoformat(tok.text)
    return dt.datetime.fromisoformat(tok.text)


def _number(spec: FieldSpec, tok: _Token) -> int | float:
    raw = tok.text
    value: int | float = float(raw) if any(c in raw for c in ".eE") else int(raw)
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {raw!r}")
    unit = tok.unit
    if unit == "%":
        if spec.unit is Unit.FRACTION:
            return value / 100
        if spec.unit is Unit.PERCENT:
            return value
        raise ValueError(f"{spec.name} is not a fraction or a percentage; write it without %")
    if unit:
        if spec.unit is not Unit.SECONDS:
            raise ValueError(f"{spec.name} has no unit; write {raw} without {unit!r}")
        return value * _SECONDS[unit] if unit != "s" else value
    return value


def _kind_text(spec: FieldSpec) -> str:
    return {
        Kind.TEXT: "text",
        Kind.WORD: "a word",
        Kind.NUMBER: "a number",
        Kind.DATE: "a date",
        Kind.TIME: "a time",
        Kind.BOOL: "yes or no",
        Kind.SET: "a set",
    }[spec.kind]


def _ops_text(spec: FieldSpec) -> str:
    ops = [str(o) for o in OPS[spec.kind]]
    return ", ".join(ops[:-1]) + f" or {ops[-1]}"


def _values_text(spec: FieldSpec) -> str:
    if spec.kind is Kind.WORD and spec.words:
        words = [w.replace("_", "-") for w in spec.words] + (["none"] if spec.nullable else [])
        return ", ".join(words[:-1]) + f" or {words[-1]}"
    extra = " or none" if spec.nullable else ""
    return {
        Kind.TEXT: "a word or quoted text",
        Kind.WORD: "a word",
        Kind.NUMBER: {
            Unit.PLAIN: "a number",
            Unit.PERCENT: "a percentage (50 or 50%)",
            Unit.FRACTION: "a fraction (0.5 or 50%)",
            Unit.SECONDS: "seconds (90, 90s, 1.5min, 2h)",
        }[spec.unit],
        Kind.DATE: "a date (2026-12-01)",
        Kind.TIME: "a date or a time (2026-12-01T14:30)",
        Kind.BOOL: "true or false",
        Kind.SET: "a word or quoted text",
    }[spec.kind] + extra


# -- printing ------------------------------------------------------------------------------------
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
