"""Where the configuration file is, and writing settings back to it.

`takeover run` and `takeover engine` read the file given with ``--config``, else the per-user
file (:func:`default_config_path`) when it exists, else nothing (the defaults). The console's
Settings dialog saves to that same file with :func:`save_config`: an existing file keeps its
comments, layout and the keys it spelled out (tomlkit edits it in place); a key it does not
have is added only when its value differs from the default, so a new file holds just what was
changed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

import tomlkit
import tomlkit.exceptions

from takeover.app.runtime.config import AppConfig, ConfigError, config_data, load_config
from takeover.storage.paths import xdg_dir

CONFIG_ENV = "TAKEOVER_CONFIG"


def default_config_path() -> Path:
    """``$TAKEOVER_CONFIG`` if set, else ``$XDG_CONFIG_HOME/takeover/config.toml``
    (~/.config/takeover/config.toml)."""
    env = os.environ.get(CONFIG_ENV, "")
    if env:
        return Path(env).expanduser()
    return xdg_dir("XDG_CONFIG_HOME", ".config") / "takeover" / "config.toml"


def config_file_for(given: str | Path | None) -> Path | None:
    """The file a run reads: ``given`` (``--config``), else the per-user file if there is one."""
    if given is not None:
        return Path(given).expanduser()
    default = default_config_path()
    return default if default.is_file() else None


def save_config(config: AppConfig, path: Path) -> Path:
    """Write ``config`` to ``path`` (made if missing, edited in place if not) and read it back;
    return the path. ConfigError says what went wrong, in a line."""
    try:
        doc = tomlkit.parse(path.read_text(encoding="utf-8")) if path.is_file() else tomlkit.document()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigError(f"cannot read {path} to update it: {reason}") from None
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix or remove it, then save again") from None
    current = config_data(load_config(path)) if path.is_file() else {}
    _merge(doc, config_data(config), config_data(AppConfig()), current)
    text = tomlkit.dumps(doc)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    if load_config(path) != config:  # what was written reads back as what was meant
        raise ConfigError(f"{path}: the saved file does not read back as these settings; save again")
    return path


def config_text(config: AppConfig) -> str:
    """``config`` as TOML: only the keys that differ from the defaults (reads back as ``config``)."""
    doc = tomlkit.document()
    _merge(doc, config_data(config), config_data(AppConfig()), {})
    return tomlkit.dumps(doc)


def _table(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _merge(
    table: MutableMapping[str, Any],
    values: Mapping[str, Any],
    defaults: Mapping[str, Any],
    current: Mapping[str, Any],
) -> None:
    """Set ``values`` in the TOML ``table``: keys it has are updated, missing ones added when they
    differ from ``defaults``. None (unset) is written as "" unless the default is None too.
    ``current``: what the file says now, checked (a list of tables is rewritten only if changed)."""
    for key, value in values.items():
        default = defaults.get(key)
        if isinstance(value, dict):
            sub = table.get(key)
            if sub is None:
                if value == default:
                    continue
                sub = table[key] = tomlkit.table()
            below = current.get(key)
            _merge(sub, value, _table(default), _table(below))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            if current.get(key, default) != value:  # [[camera]]: the list of tables as a whole
                array = tomlkit.aot()
                for item in value:
                    array.append({k: v for k, v in item.items() if v is not None})
                table[key] = array
        elif value is None:
            if default is None:
                table.pop(key, None)
            else:
                table[key] = ""
        elif key in table:
            if table[key] != value:
                table[key] = value
        elif value != default:
            table[key] = value
