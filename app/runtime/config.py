"""Typed, frozen application configuration, loaded from TOML and validated at load.

Every section is optional; a missing key takes its default. Unknown sections or keys, values
of the wrong type, NaN anywhere, infinities outside the workspace box, and numbers outside the
sensible range of their key (:data:`LIMITS`) are refused with a message that names the file (or
the command-line option), the key and what is expected.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from takeover.annotation.labels import DEFAULT_FAILURE_CATEGORIES, Vocabulary
from takeover.app.control.loop import LoopConfig
from takeover.app.net.endpoints import EndpointError, parse_endpoint
from takeover.recorder.settings import RecorderConfig
from takeover.storage.durations import DEFAULT_GRACE, parse_duration
from takeover.storage.errors import InvalidLabelError
from takeover.storage.seeds import MAX_SEED, SeedRange
from takeover.teleop.keyboard import KeyboardConfig
from takeover.teleop.spacemouse import SpaceMouseConfig


class ConfigError(ValueError):
    """A configuration a person must fix; the message says what and where."""


STATION_KINDS = ("metaworld", "remote")
RENDER_MODES = ("process", "inline")
MAX_CAMERA_FPS = 120.0


def _check_url(key: str, url: str) -> None:
    try:
        parse_endpoint(url, bind=False)
    except EndpointError as exc:
        raise ConfigError(f"{key}: {exc}") from None


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
    cameras: tuple[str, ...] = ("corner", "gripperPOV")
    """The simulated station's cameras (Meta-World camera names); an empty list renders none."""
    render: str = "process"
    """'process': cameras rendered off the control loop by a child process; 'inline': inside
    every step (each step has a frame of its own state, and the loop pays the render time)."""
    camera_fps: float = 0.0
    """Frames per second per camera when rendered off the loop; 0: the loop rate, at most 30."""
    width: int = 0
    height: int = 0
    """Image size; 0 takes the station's default."""

    def __post_init__(self) -> None:
        if self.kind not in STATION_KINDS:
            raise ConfigError(f"station.kind must be one of {', '.join(STATION_KINDS)}, got {self.kind!r}")
        if self.kind == "remote":
            _check_url("station.url", self.url)
        if not self.timeout_s > 0:
            raise ConfigError("station.timeout_s must be positive")
        _check_curve_client("station", self.curve_secret_key, self.curve_server_key)
        if self.width < 0 or self.height < 0:
            raise ConfigError("station.width and station.height must not be negative")
        if self.render not in RENDER_MODES:
            raise ConfigError(f"station.render must be one of {', '.join(RENDER_MODES)}, got {self.render!r}")
        if not 0 <= self.camera_fps <= MAX_CAMERA_FPS:
            raise ConfigError(f"station.camera_fps must be in 0..120 (0: loop rate), got {self.camera_fps}")
        if len(set(self.cameras)) != len(self.cameras):
            raise ConfigError(f"station.cameras must be distinct, got {list(self.cameras)}")


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
        if self.url:
            _check_url("policy.url", self.url)
        if not self.timeout_s > 0:
            raise ConfigError("policy.timeout_s must be positive")
        _check_curve_client("policy", self.curve_secret_key, self.curve_server_key)


@dataclass(frozen=True)
class OperatorSection:
    kind: str = "keyboard"
    """'keyboard', 'spacemouse', 'scripted' (expert takes over when the policy fails) or 'expert'."""
    name: str = ""
    """The person at the console this session (stored as each attempt's operator; '' stores ``kind``)."""

    def __post_init__(self) -> None:
        if self.kind not in OPERATORS:
            raise ConfigError(f"operator.kind must be one of {', '.join(OPERATORS)}, got {self.kind!r}")
        if len(self.name) > 200 or not self.name.isprintable():
            raise ConfigError(f"operator.name must be at most 200 printable characters, got {self.name!r}")


OPERATORS = ("keyboard", "spacemouse", "scripted", "expert")


CATALOG_SCHEMES = ("sqlite", "postgresql")
BLOB_SCHEMES = ("s3", "file")


@dataclass(frozen=True)
class StoreSection:
    path: str = ""
    """Dataset store folder; empty takes $TAKEOVER_STORE or the per-user default."""
    catalog_url: str = ""
    """Catalog database URL, e.g. ``postgresql+psycopg://user@db-host/takeover`` for a fleet of
    stations sharing one catalog; empty: the store folder's SQLite catalog (catalog.db)."""
    blob_url: str = ""
    """Where the blobs (episode files, frames) live, e.g. ``s3://bucket/prefix`` (endpoint and
    credentials from the AWS settings, docs/storage.md); empty: under the store folder."""
    grace_period: str = DEFAULT_GRACE
    """How young an unreferenced blob must be to count as another station's episode in flight
    (never removed by `doctor --repair` or `data gc`), e.g. ``24h``, ``3d``."""

    def __post_init__(self) -> None:
        try:
            parse_duration(self.grace_period)
        except ValueError as exc:
            raise ConfigError(f"store.grace_period: {exc}") from None
        if self.catalog_url:
            scheme = self.catalog_url.split("://", 1)[0].split("+", 1)[0] if "://" in self.catalog_url else ""
            if scheme not in CATALOG_SCHEMES:
                raise ConfigError(
                    "store.catalog_url must be a sqlite:// or postgresql:// URL "
                    f"(e.g. postgresql+psycopg://user@host/db), got {self.catalog_url!r}"
                )
        if "://" in self.blob_url and self.blob_url.split("://", 1)[0] not in BLOB_SCHEMES:
            raise ConfigError(f"store.blob_url must be an s3:// URL or a folder, got {self.blob_url!r}")


@dataclass(frozen=True)
class LabelsSection:
    failure_categories: tuple[str, ...] = DEFAULT_FAILURE_CATEGORIES
    """Why an attempt failed: the categories a failure's label may name (words without spaces)."""

    def __post_init__(self) -> None:
        try:
            self.vocabulary()
        except InvalidLabelError as exc:
            raise ConfigError(f"labels.failure_categories: {exc}") from None

    def vocabulary(self) -> Vocabulary:
        return Vocabulary(self.failure_categories)


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
class SeedsSection:
    """Where the simulator seeds of collected attempts come from (docs/config.md, "Seeds")."""

    start: int | None = None
    """Absent: each attempt takes the next seed the store's catalog has never handed out.
    N: attempts use N, N+1, ... (an explicit range; in evaluation mode, inside the reserved range)."""
    evaluation: bool = False
    """Evaluation mode: seeds come from the reserved range (from ``start``, else its first seed)."""
    evaluation_first: int = 5000
    evaluation_last: int = 9999
    """Seeds reserved for evaluating policies; collection never uses them."""

    def __post_init__(self) -> None:
        for key in ("start", "evaluation_first", "evaluation_last"):
            value = getattr(self, key)
            if value is not None and not 0 <= value <= MAX_SEED:
                raise ConfigError(f"seeds.{key} must be a seed in 0..{MAX_SEED}, got {value}")
        if self.evaluation_first > self.evaluation_last:
            raise ConfigError(
                f"seeds.evaluation_first ({self.evaluation_first}) must not be above "
                f"seeds.evaluation_last ({self.evaluation_last})"
            )
        if self.start is not None:
            problem = seed_problem(self, self.start)
            if problem:
                raise ConfigError(f"seeds.start: {problem}")

    @property
    def reserved(self) -> SeedRange:
        return SeedRange(self.evaluation_first, self.evaluation_last)


def seed_problem(seeds: SeedsSection, seed: int) -> str:
    """Why ``seed`` may not be used in this mode ('' if it may)."""
    reserved = seeds.reserved
    if not 0 <= seed <= MAX_SEED:
        return f"seeds run from 0 to {MAX_SEED}; {seed} is beyond them: start lower"
    if seeds.evaluation and seed not in reserved:
        return (
            f"evaluation seeds come from the reserved range {reserved}; seed {seed} is outside it "
            "(change seeds.evaluation_first/evaluation_last, or collect without evaluation mode)"
        )
    if not seeds.evaluation and seed in reserved:
        return (
            f"seed {seed} is in the range {reserved} reserved for evaluation: choose a seed outside it "
            "for collection, or evaluate (seeds.evaluation = true, --evaluation)"
        )
    return ""


@dataclass(frozen=True)
class Limit:
    """The sensible range of one numeric key."""

    low: float
    high: float
    what: str
    unit: str = ""
    low_open: bool = False
    """True: ``low`` itself is refused (the value must be above it)."""

    def problem(self, value: float) -> str:
        above = value > self.low if self.low_open else value >= self.low
        if above and value <= self.high:  # False for NaN
            return ""
        unit = f" {self.unit}" if self.unit else ""
        low = f"above {_number(self.low)}" if self.low_open else f"at least {_number(self.low)}"
        return f"{self.what} must be {low} and at most {_number(self.high)}{unit}, got {_number(value)}"


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


LIMITS: dict[str, Limit] = {
    "loop.rate_hz": Limit(1.0, 1000.0, "the control rate", "Hz"),
    "loop.max_steps": Limit(0, 1_000_000, "the steps of an attempt (0: the task's time limit)"),
    "loop.max_held_s": Limit(0.0, 86400.0, "the held time not counted against an attempt's limit", "s"),
    "loop.human_gain": Limit(0.0, 10.0, "the human gain (device twist to delta action)", low_open=True),
    "loop.safety.ee_delta_scale": Limit(0.0, 1.0, "the motion per unit of delta action", "m", low_open=True),
    "loop.safety.max_step_m": Limit(
        0.0, 1.0, "the largest step of the target per period", "m", low_open=True
    ),
}
"""Keys with a range beyond their type; every other float must be finite (and never NaN)."""
UNBOUNDED = frozenset(f"loop.safety.{axis}_{end}" for axis in "xyz" for end in ("min", "max"))
"""Keys that may be infinite (an open side of the workspace box); NaN is refused there too."""


def value_problem(key: str, value: Any) -> str:
    """Why ``value`` is not acceptable for the dotted ``key`` ('' if it is); the key is not named."""
    if isinstance(value, tuple | list):  # a list of numbers (gains, axis signs): every item
        return next((p for p in (value_problem(key, v) for v in value) if p), "")
    limit = LIMITS.get(key)
    if limit is not None and isinstance(value, int | float) and not isinstance(value, bool):
        return limit.problem(value)
    if isinstance(value, float) and math.isnan(value):
        return "must be a number, got nan"
    if isinstance(value, float) and math.isinf(value) and key not in UNBOUNDED:
        return f"must be finite, got {value}"
    return ""


def _leaves(obj: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every field; items of a list of tables share the list's key."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            yield from _leaves(value, f"{key}.")
        elif isinstance(value, tuple) and all(dataclasses.is_dataclass(v) for v in value):
            for item in value:
                yield from _leaves(item, f"{key}.")
        else:
            yield key, value


@dataclass(frozen=True)
class ConsoleSection:
    """What the operator console watches for (docs/console.md)."""

    value_alert: float | None = None
    """Alert the operator when the policy's value estimate falls below this during an attempt
    (e.g. -0.8, on the value model's scale); absent: no alert."""


@dataclass(frozen=True)
class AppConfig:
    station: StationSection = field(default_factory=StationSection)
    policy: PolicySection = field(default_factory=PolicySection)
    loop: LoopConfig = field(default_factory=LoopConfig)
    operator: OperatorSection = field(default_factory=OperatorSection)
    store: StoreSection = field(default_factory=StoreSection)
    camera: tuple[CameraSection, ...] = ()
    recorder: RecorderConfig = field(default_factory=RecorderConfig)
    seeds: SeedsSection = field(default_factory=SeedsSection)
    labels: LabelsSection = field(default_factory=LabelsSection)
    keyboard: KeyboardConfig = field(default_factory=KeyboardConfig)
    """The console's keys as a teleop device (``[keyboard]``; docs/teleop.md)."""
    spacemouse: SpaceMouseConfig = field(default_factory=SpaceMouseConfig)
    """The SpaceMouse's axis mapping, gains and buttons, for ``operator.kind = "spacemouse"``."""
    console: ConsoleSection = field(default_factory=ConsoleSection)
    """What the operator console alerts on (``[console]``)."""

    def __post_init__(self) -> None:
        for key, value in _leaves(self, ""):
            problem = value_problem(key, value)
            if problem:
                raise ConfigError(f"{key}: {problem}")


def _build(cls: type[Any], values: Any, where: str, source: str, path: str = "") -> Any:
    """``cls`` from the TOML table ``values``; ``path`` is the dotted prefix of its keys."""
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
            kwargs[key] = _build(typing.cast(type[Any], hint), value, key, source, f"{path}{key}.")
            continue
        if typing.get_origin(hint) is tuple and dataclasses.is_dataclass(typing.get_args(hint)[0]):
            item = typing.cast(type[Any], typing.get_args(hint)[0])
            if not isinstance(value, list):
                raise ConfigError(f"{source}: {key} must be a list of tables ([[{key}]])")
            kwargs[key] = tuple(_build(item, v, f"[{key}]", source, f"{key}.") for v in value)
            names = [getattr(v, "name", None) for v in kwargs[key]]
            if len(set(names)) != len(names):
                raise ConfigError(f"{source}: [[{key}]] names must be distinct, got {names}")
            continue
        try:
            kwargs[key] = coerce(value, hint)
        except TypeError:
            raise ConfigError(f"{source}: {where}.{key} must be {type_name(hint)}, got {value!r}") from None
        problem = value_problem(f"{path}{key}", kwargs[key])
        if problem:
            raise ConfigError(f"{source}: {path}{key}: {problem}")
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except ValueError as exc:  # a section's own check, e.g. "SpaceMouseConfig.axis_map must be ..."
        text = str(exc).removeprefix(f"{cls.__name__}.").removeprefix(f"{cls.__name__}: ")
        named = next((k for k in fields if text.startswith((f"{k} ", f"{k}:"))), "")
        if named:
            raise ConfigError(f"{source}: {path}{text}") from None
        raise ConfigError(f"{source}: [{where}] {text}") from None


def coerce(value: Any, hint: Any) -> Any:
    """``value`` as read from TOML, as the type ``hint`` says (TypeError if it is not one).

    An integer is taken for a float; a list for a tuple (``tuple[float, ...]`` or a fixed
    ``tuple[str, int, float]``); ``""`` for an optional value whose type includes ``str`` means
    unset (None), which TOML cannot write. A bool is never a number.
    """
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        allowed = typing.get_args(hint)
        if type(None) in allowed and (value is None or (str in allowed and value == "")):
            return None  # None itself comes from code (the settings), never from TOML
        for t in allowed:
            try:
                return coerce(value, t)
            except TypeError:
                continue
        raise TypeError(hint)
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list | tuple):
            raise TypeError(hint)
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0]) for v in value)
        if len(args) != len(value):
            raise TypeError(hint)
        return tuple(coerce(v, t) for v, t in zip(value, args, strict=True))
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint in (str, bool) and isinstance(value, hint):
        return value
    raise TypeError(hint)


def type_name(hint: Any) -> str:
    """How a person reads a field's type: 'float', 'int or str', 'a list of float', ..."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        names = [type_name(t) for t in typing.get_args(hint) if t is not type(None)]
        return " or ".join(names) + (' ("" for none)' if str in typing.get_args(hint) else "")
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {type_name(args[0])}"
        return f"[{', '.join(type_name(a) for a in args)}]"
    return str(getattr(hint, "__name__", hint))


def load_config(path: str | Path | None) -> AppConfig:
    """Load and validate a TOML configuration; None gives the defaults."""
    if path is None:
        return AppConfig()
    p = Path(path)
    if p.is_dir():
        raise ConfigError(
            f"configuration file {p} is a folder: give the path of a TOML file (docs/config.md)"
        )
    if not p.is_file():
        raise ConfigError(f"configuration file {p} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {p}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a text file") from None
    return parse_config(text, str(p))


def parse_config(text: str, source: str) -> AppConfig:
    """A configuration from TOML text; errors name ``source`` (the file, or 'settings')."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    return config_from_data(data, source)


def config_from_data(data: Mapping[str, Any], source: str) -> AppConfig:
    """A configuration from TOML-shaped data (tables as dicts), checked as a file is."""
    result = _build(AppConfig, dict(data), "top level", source)
    assert isinstance(result, AppConfig)
    return result


def config_data(config: Any) -> Any:
    """The TOML-shaped data of a configuration (or of one section): tables as dicts, lists of
    tables as lists of dicts, tuples as lists; the inverse of :func:`config_from_data`."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: config_data(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, tuple | list):
        return [config_data(v) for v in config]
    return config


def with_overrides(
    config: AppConfig, *, options: Mapping[str, str] | None = None, **sections: dict[str, Any]
) -> AppConfig:
    """Return a copy with some keys replaced (command-line options); None values are ignored.

    ``options`` maps a dotted key (``"loop.rate_hz"``) to the option that set it (``"--rate"``), so
    that a refused value is reported under the name the person typed.
    """
    names = dict(options or {})
    out = config
    for name, values in sections.items():
        clean = {k: v for k, v in values.items() if v is not None}
        if not clean:
            continue
        for key, value in clean.items():
            problem = value_problem(f"{name}.{key}", value)
            if problem:
                raise ConfigError(f"{names.get(f'{name}.{key}', f'{name}.{key}')}: {problem}")
        try:
            out = dataclasses.replace(out, **{name: dataclasses.replace(getattr(out, name), **clean)})
        except ValueError as exc:  # ConfigError too: a section's own checks, or AppConfig's
            text = str(exc)
            for k in clean:  # a message about one key: name the option instead of the key
                if text.startswith(f"{name}.{k}: ") and f"{name}.{k}" in names:
                    raise ConfigError(f"{names[f'{name}.{k}']}: {text[len(name) + len(k) + 3 :]}") from None
            given = " / ".join(names.get(f"{name}.{k}", f"{name}.{k}") for k in clean)
            raise ConfigError(f"{given}: {text}") from None
    return out
