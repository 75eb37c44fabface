"""What the parameters of every derivation share: canonical JSON, a digest and TOML files.

A derivation's parameters are a frozen dataclass that also derives from :class:`CanonicalParams`;
its stored form is :meth:`CanonicalParams.canonical_json` and its name in the catalog and in
version manifests is :meth:`CanonicalParams.digest`.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, ClassVar, Self


class ParamsError(ValueError):
    """Derivation parameters a person must fix (the message says which and how)."""


class CanonicalParams:
    """Mixed into a frozen parameter dataclass: JSON, digest, and loading from a dict or a file."""

    TABLE: ClassVar[str]
    """The TOML table that may hold the parameters in a file, also the word used in messages."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (tuples become lists), in field order."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}  # type: ignore[call-overload]

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)

    def digest(self) -> str:
        """sha256 of the canonical JSON: equal parameters, equal digest."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - known)
        if unknown:
            raise ParamsError(f"unknown {cls.TABLE} parameter(s) {unknown}; known: {sorted(known)}")
        try:
            return cls(**values)
        except TypeError as exc:  # e.g. a string where a list was expected
            raise ParamsError(f"invalid {cls.TABLE} parameters: {exc}") from None

    @classmethod
    def load(cls, path: Path | str) -> Self:
        """Read parameters from a TOML file: top-level keys, or a table named :attr:`TABLE`."""
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ParamsError(f"parameter file {p} does not exist") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ParamsError(f"cannot read parameter file {p}: {exc}") from None
        table = data.get(cls.TABLE, data)
        if cls.TABLE in data and len(data) > 1:
            raise ParamsError(f"{p}: put every parameter in the [{cls.TABLE}] table, found {sorted(data)}")
        if not isinstance(table, dict):
            raise ParamsError(f"{p}: [{cls.TABLE}] must be a table")
        try:
            return cls.from_dict(table)
        except ParamsError as exc:
            raise ParamsError(f"{p}: {exc}") from None
