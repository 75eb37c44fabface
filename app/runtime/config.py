"""Typed, frozen application configuration, loaded from TOML and validated at load.

Every section is optional; a missing key takes its default. Unknown sections or keys, and
values of the wrong type, are refused with a message that names the file, the key and what
is expected.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from takeover.app.control.loop import LoopConfig
from takeover.recorder.settings import RecorderConfig


class ConfigError(ValueError):
    """A configuration a person must fix; the message says what and where."""


STATION_KINDS = ("metaworld", "remote")


def _check_curve_client(section: str, secret_key: str, server_key: str) -> None:
    if bool(secret_key) != bool(server_key):
        raise ConfigError(
            f"{section}.curve_secret_key and {section}.curve_server_key go together "
            "(this client's secret key file and the server's public key file)"
        )


@dataclass(frozen=True)
class StationSection:
    kind: str = "metaworld"
    """'metaworld' (the simulation, in process) or 'remote' (a station server at ``url``)."""
    url: str = ""
    """Endpoint of a station server, for kind 'remote' (e.g. tcp://robot-pc:5556)."""
    timeout_s: float = 5.0
    """How long a remote station may take to answer one request."""
    curve_secret_key: str = ""
    """For a CURVE-secured remote station: this client's secret key file (.key_secret)."""
    curve_server_key: str = ""
    """For a CURVE-secured remote station: the server's public key file (.key)."""
    task: str = "pick-place-v3"
    camera: str = ""
    """Camera name; empty takes the station's default."""
    width: int = 0
    height: int = 0
    """Image size; 0 takes the station's default."""

    def __post_init__(self) -> None:
        if self.kind not in STATION_KINDS:
            raise ConfigError(f"station.kind must be one of {', '.join(STATION_KINDS)}, got {self.kind!r}")
        if self.kind == "remote" and not self.url.startswith(("tcp://", "ipc://")):
            raise ConfigError(
                f"station.url must look like tcp://HOST:PORT for a remote station, got {self.url!r}"
            )
        if not self.timeout_s > 0:
            raise ConfigError("station.timeout_s must be positive")
        _check_curve_client("station", self.curve_secret_key, self.curve_server_key)
        if self.width < 0 or self.height < 0:
            raise ConfigError("station.width and station.height must not be negative")


@dataclass(frozen=True)
class PolicySection:
    url: str = ""
    """Endpoint of a running policy server; empty starts a local one."""
    checkpoint: str = ""
    """Checkpoint for the local server; empty takes the one that ships with Takeover."""
    timeout_s: float = 5.0
    curve_secret_key: str = ""
    """For a CURVE-secured policy server at ``url``: this client's secret key file (.key_secret)."""
    curve_server_key: str = ""
    """For a CURVE-secured policy server at ``url``: the server's public key file (.key)."""

    def __post_init__(self) -> None:
        if self.url and not self.url.startswith(("tcp://", "ipc://")):
            raise ConfigError(f"policy.url must look like tcp://HOST:PORT, got {self.url!r}")
        if not self.timeout_s > 0:
            raise ConfigError("policy.timeout_s must be positive")
        _check_curve_client("policy", self.curve_secret_key, self.curve_server_key)


@dataclass(frozen=True)
class OperatorSection:
    kind: str = "keyboard"
    """'keyboard', 'spacemouse', 'scripted' (expert takes over when the policy fails) or 'expert'."""

    def __post_init__(self) -> None:
        if self.kind not in OPERATORS:
            raise ConfigError(f"operator.kind must be one of {', '.join(OPERATORS)}, got {self.kind!r}")


OPERATORS = ("keyboard", "spacemouse", "scripted", "expert")


@dataclass(frozen=True)
class StoreSection:
    path: str = ""
    """Dataset store folder; empty takes $TAKEOVER_STORE or the per-user default."""


CAMERA_KINDS = ("opencv", "synthetic")


@dataclass(frozen=True)
class CameraSection:
    """A free-running camera recorded beside the station's own (``[[camera]]`` tables)."""

    name: str = ""
    kind: str = "opencv"
    """'opencv' (a device, stream URL or video file through cv2.VideoCapture) or 'synthetic'."""
    source: str = ""
    """For 'opencv': a device index ("0") or a URL / file path."""
    width: int = 0
    height: int = 0
    fps: float = 0.0
    """0 leaves the camera's own setting (synthetic: 640 x 480 at 30 fps)."""

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("every [[camera]] needs a name")
        if self.kind not in CAMERA_KINDS:
            raise ConfigError(f"camera {self.name!r}: kind must be one of {', '.join(CAMERA_KINDS)}")
        if self.kind == "opencv" and not self.source:
            raise ConfigError(f"camera {self.name!r}: an opencv camera needs a source (index, URL or file)")
        if self.width < 0 or self.height < 0 or self.fps < 0:
            raise ConfigError(f"camera {self.name!r}: width, height and fps must not be negative")


@dataclass(frozen=True)
class AppConfig:
    station: StationSection = field(default_factory=StationSection)
    policy: PolicySection = field(default_factory=PolicySection)
    loop: LoopConfig = field(default_factory=LoopConfig)
    operator: OperatorSection = field(default_factory=OperatorSection)
    store: StoreSection = field(default_factory=StoreSection)
    camera: tuple[CameraSection, ...] = ()
    recorder: RecorderConfig = field(default_factory=RecorderConfig)


def _build(cls: type[Any], values: Any, where: str, source: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: [{where}] must be a table, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{source}: unknown key '{key}' in [{where}] (known keys: {known})")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(typing.cast(type[Any], hint), value, key, source)
            continue
        if typing.get_origin(hint) is tuple and dataclasses.is_dataclass(typing.get_args(hint)[0]):
            item = typing.cast(type[Any], typing.get_args(hint)[0])
            if not isinstance(value, list):
                raise ConfigError(f"{source}: {key} must be a list of tables ([[{key}]])")
            kwargs[key] = tuple(_build(item, v, f"[{key}]", source) for v in value)
            names = [getattr(v, "name", None) for v in kwargs[key]]
            if len(set(names)) != len(names):
                raise ConfigError(f"{source}: [[{key}]] names must be distinct, got {names}")
            continue
        kwargs[key] = _check_type(value, hint, f"{where}.{key}", source)
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{source}: [{where}] {exc}") from None


def _check_type(value: Any, hint: Any, key: str, source: str) -> Any:
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for t in allowed:
        if t is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if t in (str, bool) and isinstance(value, t):
            return value
    names = " or ".join(getattr(t, "__name__", str(t)) for t in allowed)
    raise ConfigError(f"{source}: {key} must be {names}, got {value!r}")


def load_config(path: str | Path | None) -> AppConfig:
    """Load and validate a TOML configuration; None gives the defaults."""
    if path is None:
        return AppConfig()
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"configuration file {p} does not exist")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a text file") from None
    result = _build(AppConfig, data, "top level", str(p))
    assert isinstance(result, AppConfig)
    return result


def with_overrides(config: AppConfig, **sections: dict[str, Any]) -> AppConfig:
    """Return a copy with some keys replaced (command-line options); None values are ignored."""
    out = config
    for name, values in sections.items():
        clean = {k: v for k, v in values.items() if v is not None}
        if clean:
            out = dataclasses.replace(out, **{name: dataclasses.replace(getattr(out, name), **clean)})
    return out
