"""Typed messages: frozen dataclasses whose wire form is derived from their fields.

A message type is declared once::

    @dataclass(frozen=True)
    class Act(Request):
        TYPE: ClassVar[str] = "act"
        client: str
        seq: int
        action: np.ndarray

``Act(...).encode()`` gives the bytes and ``Act.decode(payload)`` checks them: exactly the
envelope (:mod:`takeover.app.net.wire`) and the declared fields (a field with a default may be
left out), each of exactly its declared type. Nothing is coerced: an integer is not a float, a
bool is not an integer, a list of floats is not a tuple of ints. Further checks of a field live
in the dataclass's ``__post_init__``; a ValueError raised there is a refusal like any other.
:class:`MessageTable` decodes whichever of several types arrives (a server's requests).

Field types understood: bool, int, float, str, bytes, numpy arrays, None and unions with None,
``tuple[T, ...]`` and fixed-length tuples (lists on the wire), ``dict[str, T]``, ``Literal``,
enums (by value) and nested dataclasses (maps with exactly their fields). A field declared with
``field(default=..., metadata=LOCAL)`` is not part of the wire form: it is never sent, a map
that carries it is refused, and a decoded value has its default (what one side adds to a value
after it arrived, such as the station's raw times on a rebased observation).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Iterable
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar, Union

import numpy as np

from takeover.app.net import wire
from takeover.app.net.wire import WireError
from takeover.storage.codec import brief, type_name

_NONE = type(None)
_SCALARS: dict[type, str] = {
    bool: "a bool",
    int: "an integer",
    float: "a float",
    str: "a string",
    bytes: "bytes",
    _NONE: "nil",
}


LOCAL = types.MappingProxyType({"wire": False})
"""Field metadata of a dataclass field that has no wire form (see the module's docstring)."""

# -- fields <-> wire values -----------------------------------------------------------------------


def _fields(cls: type) -> tuple[tuple[str, Any, bool], ...]:
    """(name, type, required) of each field of the dataclass ``cls``."""
    return _cached_fields(cls)


@functools.cache
def _cached_fields(cls: Any) -> tuple[tuple[str, Any, bool], ...]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.metadata.get("wire", True) is False:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise TypeError(f"{cls.__name__}: local field {f.name!r} needs a default")
            continue
        if f.name in wire.ENVELOPE:
            raise TypeError(f"{cls.__name__}: field name {f.name!r} is taken by the envelope")
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        out.append((f.name, hints[f.name], required))
    return tuple(out)


def _optional_arm(tp: Any) -> Any:
    args = [a for a in typing.get_args(tp) if a is not _NONE]
    if len(args) != 1:
        raise TypeError(f"only unions with None have a wire form, not {tp!r}")
    return args[0]


def to_wire(tp: Any, value: Any) -> Any:
    """``value`` (of declared type ``tp``) as the codec encodes it."""
    origin = typing.get_origin(tp)
    if tp in (bool, int, float):
        return tp(value)
    if tp in (str, bytes, _NONE):
        return value
    if tp is np.ndarray:
        return np.asarray(value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return value.value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return record_to_wire(value)
    if origin in (Union, types.UnionType):
        return None if value is None else to_wire(_optional_arm(tp), value)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return [to_wire(args[0], v) for v in value]
        return [to_wire(a, v) for a, v in zip(args, value, strict=True)]
    if origin is dict:
        return {str(k): to_wire(typing.get_args(tp)[1], v) for k, v in value.items()}
    if origin is Literal:
        return value
    raise TypeError(f"no wire form for {tp!r}")


def record_to_wire(record: Any) -> dict[str, Any]:
    """A dataclass instance as a map of its fields' wire values."""
    return {name: to_wire(tp, getattr(record, name)) for name, tp, _ in _fields(type(record))}


def _refuse(path: str, expected: str, value: Any) -> WireError:
    got = type_name(value)
    if isinstance(value, bool | int | float | str):
        got += f" {brief(value, 40)}"
    return WireError(f"'{path}' must be {expected}, got {got}")


def _expected(tp: Any) -> str:
    """How a type is named in an error message."""
    if tp in _SCALARS:
        return _SCALARS[tp]
    if tp is np.ndarray:
        return "an array"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return f"one of {sorted(str(m.value) for m in tp)}"
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return "a map"
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return f"nil or {_expected(_optional_arm(tp))}"
    if origin is tuple:
        args = typing.get_args(tp)
        return "a list" if args[-1] is Ellipsis else f"a list of {len(args)}"
    if origin is dict:
        return "a map"
    if origin is Literal:
        return f"one of {list(typing.get_args(tp))}"
    return repr(tp)


def from_wire(tp: Any, value: Any, path: str, want: str = "") -> Any:
    """A decoded wire value checked against the declared type ``tp``; WireError naming ``path``
    and what was wanted there (``want``, by default said from ``tp``)."""
    want = want or _expected(tp)
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return None if value is None else from_wire(_optional_arm(tp), value, path, want)
    if tp in _SCALARS or tp is np.ndarray:
        if not (isinstance(value, np.ndarray) if tp is np.ndarray else type(value) is tp):
            raise _refuse(path, want, value)
        return value
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if not any(type(value) is type(m.value) and value == m.value for m in tp):
            raise _refuse(path, want, value)
        return tp(value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise _refuse(path, want, value)
        return record_from_wire(tp, value, f"{path}.")
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list):
            raise _refuse(path, want, value)
        if args[-1] is Ellipsis:
            return tuple(from_wire(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise WireError(f"'{path}' must be {want}, got {len(value)} items")
        pairs = enumerate(zip(args, value, strict=True))
        return tuple(from_wire(a, v, f"{path}[{i}]") for i, (a, v) in pairs)
    if origin is dict:
        if not isinstance(value, dict):
            raise _refuse(path, want, value)
        item = typing.get_args(tp)[1]
        return {k: from_wire(item, v, f"{path}[{brief(k, 30)}]") for k, v in value.items()}
    if origin is Literal:
        if not any(type(value) is type(a) and value == a for a in typing.get_args(tp)):
            raise _refuse(path, want, value)
        return value
    raise TypeError(f"no wire form for {tp!r}")


_R = TypeVar("_R")


def record_from_wire(cls: type[_R], value: dict[str, Any], prefix: str = "") -> _R:
    """An instance of the dataclass ``cls`` from a map with exactly its fields (optional ones may
    be absent); a ValueError from its ``__post_init__`` becomes a WireError."""
    spec = _fields(cls)
    names = {name for name, _, _ in spec}
    extra = [k for k in value if k not in names]
    if extra:
        shown = ", ".join(brief(k, 30) for k in sorted(extra)[:5])
        raise WireError(
            f"unexpected field(s) {shown} in {prefix.rstrip('.') or 'the message'}; expected {sorted(names)}"
        )
    missing = [name for name, _, required in spec if required and name not in value]
    if missing:
        raise WireError(f"missing field(s) {', '.join(repr(prefix + m) for m in missing)}")
    kwargs = {name: from_wire(tp, value[name], prefix + name) for name, tp, _ in spec if name in value}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise WireError(f"{prefix}{exc}" if prefix else str(exc)) from None


# -- messages -------------------------------------------------------------------------------------


class Message:
    """Base of the typed messages (frozen dataclasses that set ``TYPE``)."""

    TYPE: ClassVar[str]
    OK: ClassVar[bool | None] = None
    """Requests carry no ``ok``; replies carry ``ok: true`` (an error reply is the envelope's)."""

    def body(self) -> dict[str, Any]:
        head: dict[str, Any] = {"type": self.TYPE}
        if self.OK is not None:
            head["ok"] = self.OK
        return {**head, **record_to_wire(self)}

    def encode(self) -> bytes:
        return wire.encode(self.body())

    @classmethod
    def from_body(cls, msg: dict[str, Any]) -> Self:
        """Check a decoded envelope (``v`` and ``type`` already checked) as this message type."""
        if msg["type"] != cls.TYPE:
            raise WireError(f"expected a '{cls.TYPE}' message, got {brief(msg['type'])}")
        if cls.OK is None and "ok" in msg:
            raise WireError(f"a '{cls.TYPE}' request carries no 'ok'")
        if cls.OK is not None and msg.get("ok") is not cls.OK:
            raise WireError(f"a '{cls.TYPE}' reply must carry ok: {str(cls.OK).lower()}")
        fields = {k: v for k, v in msg.items() if k not in wire.ENVELOPE}
        try:
            return record_from_wire(cls, fields)
        except WireError as exc:
            raise WireError(f"bad '{cls.TYPE}' message: {exc}") from None

    @classmethod
    def decode(cls, payload: bytes, max_bytes: int = wire.MAX_MESSAGE_BYTES) -> Self:
        return cls.from_body(wire.decode(payload, cls.TYPE, max_bytes))


class Request(Message):
    """A message a client sends."""


class Reply(Message):
    """A message a server answers with (``ok: true``)."""

    OK: ClassVar[bool | None] = True


M = TypeVar("M", bound=Message)


class MessageTable(Generic[M]):
    """The message types one endpoint accepts, by ``TYPE``; add one with :meth:`extended`."""

    def __init__(self, kinds: Iterable[type[M]]) -> None:
        self.kinds: dict[str, type[M]] = {}
        for kind in kinds:
            if kind.TYPE in self.kinds:
                raise ValueError(f"two message types are named {kind.TYPE!r}")
            self.kinds[kind.TYPE] = kind

    def extended(self, *more: type[M]) -> MessageTable[M]:
        return MessageTable([*self.kinds.values(), *more])

    def decode(self, payload: bytes, max_bytes: int = wire.MAX_MESSAGE_BYTES) -> M:
        msg = wire.decode(payload, max_bytes=max_bytes)
        kind = self.kinds.get(msg["type"])
        if kind is None:
            raise WireError(
                f"unknown message type {brief(msg['type'])}; expected one of {sorted(self.kinds)}"
            )
        return kind.from_body(msg)


def decode_reply(payload: bytes, kind: type[M]) -> M:
    """A reply of type ``kind``; an error reply raises :class:`RefusedError` with its reason."""
    msg = wire.decode(payload)
    reason = wire.error_reason(msg)
    if reason is not None:
        raise RefusedError(reason)
    return kind.from_body(msg)


class RefusedError(Exception):
    """The other side answered with an error reply; the text is its reason."""
