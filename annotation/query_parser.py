"""The parser of the curation query language (:mod:`takeover.annotation.query_language` says
what a query is and means): a hand-written tokenizer and a small recursive-descent parser.

The grammar is a dozen lines, and its errors must point at the column where a query goes wrong
and say what was expected there, which is easier done by hand than through a parser generator.
Values are typed by the field they are compared with (a date for ``date``, seconds for
``duration``, a word of the vocabulary for ``label``), so a query that parses can be evaluated.
Nothing is ever evaluated as Python.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from takeover.annotation.query_language import (
    KEYWORDS,
    OPS,
    ORDERED,
    WORD,
    And,
    Compare,
    Everything,
    FieldSpec,
    Kind,
    Node,
    Not,
    Op,
    Or,
    QueryError,
    Unit,
    Value,
)

# -- tokens --------------------------------------------------------------------------------------
_TOKENS = re.compile(
    rf"""
    (?P<space>\s+)
  | (?P<punct>[(),])
  | (?P<op>==|!=|<=|>=|!~|=|<|>|~)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<date>\d{{4}}-\d{{2}}-\d{{2}}(?:T\d{{2}}:\d{{2}}(?::\d{{2}})?)?)(?![\w.\-:])
  | (?P<number>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)(?P<unit>%|ms|min|s|h)?(?![\w.\-:])
  | (?P<word>{WORD})
  | (?P<raw>[\w.\-+][\w.\-:/@+]*)
    """,
    re.VERBOSE,
)
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
