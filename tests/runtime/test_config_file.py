"""The configuration file written back: comments kept, only changes added, read back as meant;
the per-user file; the keys as the Settings dialog edits them, refused in the file's own words."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from takeover.app.runtime.config import AppConfig, ConfigError, load_config, parse_config
from takeover.app.runtime.config_fields import (
    current_value,
    section_settings,
    setting,
    text_value,
    value_text,
    with_settings,
)
from takeover.app.runtime.config_file import config_file_for, config_text, default_config_path, save_config

HAND_WRITTEN = """\
# the lab's station
[station]
task = "pick-place-v3"   # the task we collect today

[loop]
rate_hz = 20.0

[[camera]]
name = "wrist"
kind = "synthetic"
"""


def test_saving_keeps_the_file_as_written_and_adds_only_what_changed(tmp_path: Path) -> None:
    path = tmp_path / "takeover.toml"
    path.write_text(HAND_WRITTEN)
    config = load_config(path)
    changed = with_settings(
        config,
        {
            "station.task": "reach-v3",
            "spacemouse.axis_sign": [1, -1, 1, 1, 1, 1],
            "spacemouse.hold_button": 2,
            "spacemouse.gripper_button": None,  # unbound: written as "" (TOML has no null)
            "keyboard.speed": 0.5,
        },
    )
    save_config(changed, path)
    text = path.read_text()
    assert text.startswith('# the lab\'s station\n[station]\ntask = "reach-v3"   # the task we collect')
    assert "rate_hz = 20.0" in text and 'name = "wrist"' in text and "source" not in text
    assert "[spacemouse]" in text and 'gripper_button = ""' in text and "hold_button = 2" in text
    assert "deadband" not in text  # a default not in the file stays out of it
    assert load_config(path) == changed
    assert changed.spacemouse.gripper_button is None and changed.spacemouse.axis_sign == (1, -1, 1, 1, 1, 1)


def test_a_new_file_holds_only_the_changes_and_its_folder_is_made(tmp_path: Path) -> None:
    path = tmp_path / "new" / "config.toml"
    config = with_settings(AppConfig(), {"policy.url": "tcp://10.0.0.5:5555", "loop.human_gain": 2.0})
    save_config(config, path)
    assert load_config(path) == config
    assert path.read_text() == '[policy]\nurl = "tcp://10.0.0.5:5555"\n\n[loop]\nhuman_gain = 2.0\n'
    assert config_text(AppConfig()) == "" and parse_config(config_text(config), "x") == config


def test_a_broken_file_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "takeover.toml"
    path.write_text("[loop\nrate_hz = 3\n")
    with pytest.raises(ConfigError, match=r"not valid TOML .*fix or remove it"):
        save_config(AppConfig(), path)
    assert path.read_text() == "[loop\nrate_hz = 3\n"


def test_the_per_user_file_is_read_when_no_file_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TAKEOVER_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_config_path() == tmp_path / "takeover" / "config.toml"
    assert config_file_for(None) is None  # none yet: the defaults
    save_config(with_settings(AppConfig(), {"loop.rate_hz": 10.0}), default_config_path())
    assert config_file_for(None) == default_config_path()
    assert config_file_for("other.toml") == Path("other.toml")
    monkeypatch.setenv("TAKEOVER_CONFIG", str(tmp_path / "x.toml"))
    assert default_config_path() == tmp_path / "x.toml"


@pytest.mark.parametrize(
    ("key", "text", "message"),
    [
        ("loop.rate_hz", "fast", r"^settings: loop.rate_hz must be float, got 'fast'"),
        ("loop.rate_hz", "0", r"loop.rate_hz: the control rate must be at least 1 and at most 1000 Hz"),
        ("loop.human_gain", "nan", r"loop.human_gain: the human gain .* got nan"),
        ("spacemouse.axis_map", "0, 1, 2, 3, 4, 4", r"spacemouse.axis_map must be a permutation of 0..5"),
        ("spacemouse.scale", "1, 1, 1", r"spacemouse.scale needs 6 entries"),
        ("spacemouse.scale", "1, 1, 1, 1, 1, inf", r"spacemouse.scale: must be finite, got inf"),
        ("spacemouse.scale", "1, 1, 1, 1, 1, -1", r"spacemouse.scale must be >= 0 \(use axis_sign to flip\)"),
        ("spacemouse.axis_sign", "1, 1, 1, 1, 1, 2", r"spacemouse.axis_sign entries must be \+1 or -1"),
        ("spacemouse.deadband", "1", r"spacemouse.deadband must be in \[0, 1\)"),
        ("spacemouse.gripper_button", "1", r"one button is bound to two actions: \[1, 1\]"),
        ("keyboard.speed", "2", r"keyboard.speed must be in \(0, 1\]"),
        ("keyboard.gripper_keys", "W", r"key 'w' is in both gripper_keys and motion_keys"),
        ("keyboard.motion_keys", '["W", 0]', r"keyboard.motion_keys must be a list of \[str, int, float\]"),
        ("station.kind", "robot", r"station.kind must be one of metaworld, remote, got 'robot'"),
        ("policy.url", "localhost:5555", r"policy.url: endpoint 'localhost:5555' must look like"),
        ("store.catalog_url", "mysql://db/x", r"store.catalog_url must be a sqlite:// or postgresql:// URL"),
        ("store.blob_url", "gs://bucket/x", r"store.blob_url must be an s3:// URL or a folder"),
    ],
)
def test_a_value_the_file_would_refuse_is_refused_in_its_words(key: str, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        with_settings(AppConfig(), {key: text_value(text, setting(key).hint)})


def test_every_key_shown_reads_back_from_its_text() -> None:
    """Each default, shown as text and read back, is the same value (lists, optional buttons, lists
    of lists included), and every key has its type and, where the class says one, its meaning."""
    config = AppConfig()
    sections = ("station", "policy", "store", "operator", "keyboard", "spacemouse", "loop")
    keys = [s for section in sections for s in section_settings(section)]
    assert {"spacemouse.axis_map", "spacemouse.axis_sign", "keyboard.motion_keys", "loop.human_gain"} <= {
        s.key for s in keys
    }
    for s in keys:
        value = current_value(config, s.key)
        assert with_settings(config, {s.key: text_value(value_text(value, s.hint), s.hint)}) == config, s.key
    assert "permutation" not in setting("spacemouse.axis_map").doc  # the docstring, not a check
    assert setting("spacemouse.axis_map").doc.startswith("Robot axis i reads device axis")
    assert setting("operator.kind").choices == ("keyboard", "spacemouse", "scripted", "expert")
    assert value_text(None, setting("spacemouse.hold_button").hint) == ""
    assert text_value("", setting("spacemouse.hold_button").hint) is None
    assert text_value("LEFT", setting("spacemouse.hold_button").hint) == "LEFT"
    with pytest.raises(KeyError):
        setting("spacemouse.nosuch")


def test_device_sections_reach_the_devices(tmp_path: Path) -> None:
    path = tmp_path / "takeover.toml"
    path.write_text('[spacemouse]\nscale = [0.5, 0.5, 0.5, 1, 1, 1]\nhold_button = "LEFT"\n')
    with path.open("a") as f:
        f.write("[keyboard]\nspeed = 0.3\n")
    config = load_config(path)
    assert config.spacemouse.scale == (0.5, 0.5, 0.5, 1.0, 1.0, 1.0)
    assert config.spacemouse.hold_button == "LEFT"
    assert config.keyboard.speed == 0.3
    assert dataclasses.replace(config, keyboard=AppConfig().keyboard).keyboard.speed == 1.0
