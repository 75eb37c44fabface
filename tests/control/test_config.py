from pathlib import Path

import pytest

from takeover.app.runtime.config import AppConfig, ConfigError, load_config, with_overrides


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "takeover.toml"
    p.write_text(text)
    return p


def test_defaults_without_a_file() -> None:
    cfg = load_config(None)
    assert cfg == AppConfig()
    assert cfg.operator.kind == "keyboard"


def test_values_are_read_and_typed(tmp_path: Path) -> None:
    cfg = load_config(
        write(tmp_path, '[loop]\nrate_hz = 10\nmax_steps = 50\n[operator]\nkind = "scripted"\n')
    )
    assert cfg.loop.rate_hz == 10.0 and isinstance(cfg.loop.rate_hz, float)
    assert cfg.loop.max_steps == 50
    assert cfg.operator.kind == "scripted"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[loop\nrate_hz = 1", "not valid TOML"),
        ("[loop]\nrate = 10", "unknown key 'rate' in \\[loop\\]"),
        ("[nosuch]\nx = 1", "unknown key 'nosuch'"),
        ('[loop]\nrate_hz = "fast"', "loop.rate_hz must be float"),
        ("[loop]\nrate_hz = -5", "rate_hz must be positive"),
        ('[operator]\nkind = "telepathy"', "operator.kind must be one of"),
        ('[policy]\nurl = "localhost:5555"', "policy.url must look like"),
        ("loop = 3", "\\[loop\\] must be a table"),
    ],
)
def test_malformed_configs_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_overrides_ignore_none() -> None:
    cfg = with_overrides(AppConfig(), loop={"rate_hz": 5.0, "max_steps": None}, store={"path": None})
    assert cfg.loop.rate_hz == 5.0 and cfg.loop.max_steps == AppConfig().loop.max_steps


def test_the_documented_example_is_a_valid_configuration(tmp_path: Path) -> None:
    """docs/config.md's example parses, and its [loop] and [loop.safety] keys are the defaults."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "config.md").read_text()
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    cfg = load_config(write(tmp_path, example))
    defaults = AppConfig().loop
    assert cfg.loop.ramp_steps == defaults.ramp_steps and cfg.loop.handback_speed_cap
    assert cfg.loop.safety.max_step_m == defaults.safety.max_step_m
    assert cfg.loop.safety.x_min == -1.0e9 and cfg.camera[0].name == "wrist"


def test_recorder_settings_are_read_and_checked(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "[recorder]\njpeg_quality = 75\nencode_workers = 1\n"))
    assert cfg.recorder.jpeg_quality == 75 and cfg.recorder.encode_workers == 1
    with pytest.raises(ConfigError, match=r"jpeg_quality must be in 1\.\.100"):
        load_config(write(tmp_path, "[recorder]\njpeg_quality = 0\n"))
