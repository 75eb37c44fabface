import dataclasses
from pathlib import Path

import pytest

from takeover.app.control.loop import LoopConfig
from takeover.app.runtime.config import LIMITS, AppConfig, ConfigError, load_config, with_overrides


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
        ("[loop]\nrate_hz = -5", "loop.rate_hz: the control rate must be at least 1 and at most 1000 Hz"),
        ("[loop]\nrate_hz = 1e-6", "loop.rate_hz: the control rate .* got 1e-06"),
        ("[loop]\nrate_hz = inf", "loop.rate_hz: .* got inf"),
        ("[loop]\nhuman_gain = nan", "loop.human_gain: the human gain .* got nan"),
        ("[loop.safety]\nee_delta_scale = inf", "loop.safety.ee_delta_scale: .* at most 1 m, got inf"),
        ("[loop.safety]\nx_max = nan", "loop.safety.x_max: must be a number, got nan"),
        ("[station]\ntimeout_s = inf", "station.timeout_s: must be finite, got inf"),
        ('[[camera]]\nname = "a"\nkind = "synthetic"\nfps = inf', "camera.fps: must be finite"),
        (
            "[seeds]\nstart = 5000",
            "seeds.start: seed 5000 is in the range 5000..9999 reserved for evaluation",
        ),
        ("[seeds]\nstart = -1", "seeds.start must be a seed in 0..2147483647"),
        ("[seeds]\nevaluation_first = 10\nevaluation_last = 9", "must not be above"),
        ("[seeds]\nevaluation = true\nstart = 3", "evaluation seeds come from the reserved range"),
        ('[operator]\nkind = "telepathy"', "operator.kind must be one of"),
        ('[policy]\nurl = "localhost:5555"', "policy.url: endpoint 'localhost:5555' must look like"),
        ('[policy]\nurl = "tcp://127.0.0.1:99999"', "policy.url: .* port 99999 is out of range"),
        ('[station]\nkind = "remote"\nurl = ""', "station.url: the endpoint is empty"),
        ("loop = 3", "\\[loop\\] must be a table"),
    ],
)
def test_malformed_configs_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="is a folder: give the path of a TOML file"):
        load_config(tmp_path)


def test_every_limit_is_checked_on_load_and_on_override(tmp_path: Path) -> None:
    """A value outside its range is refused from a file, from an option (named), and in code."""
    cfg = with_overrides(AppConfig(), loop={"rate_hz": 1000.0, "human_gain": 10.0})
    assert cfg.loop.rate_hz == 1000.0
    for key in LIMITS:
        section, _, name = key.partition(".")
        if "." in name:
            continue  # nested ([loop.safety]): covered from a file above
        below = LIMITS[key].low - 1  # below every range (0 itself is allowed for some keys)
        with pytest.raises(ConfigError, match=rf"^--opt: .* got {below:g}"):
            with_overrides(AppConfig(), options={key: "--opt"}, **{section: {name: below}})
    with pytest.raises(ConfigError, match=r"^loop.rate_hz: the control rate"):
        dataclasses.replace(AppConfig(), loop=LoopConfig(rate_hz=1e-6))
    with pytest.raises(ConfigError, match=r"^--seed: seed 5000 is in the range"):
        with_overrides(AppConfig(), options={"seeds.start": "--seed"}, seeds={"start": 5000})
    ok = with_overrides(AppConfig(), seeds={"start": 5000, "evaluation": True})
    assert ok.seeds.start == 5000 and 5000 in ok.seeds.reserved


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


def test_the_operators_name_comes_from_the_file_or_the_command_line(tmp_path: Path) -> None:
    import argparse

    from takeover.app.cli.run import _config_from, add_run_options

    parser = argparse.ArgumentParser()
    add_run_options(parser)
    path = write(tmp_path, '[operator]\nname = "Grace"\n')
    assert _config_from(parser.parse_args(["--config", str(path)])).operator.name == "Grace"
    args = parser.parse_args(["--config", str(path), "--operator-name", "Ada"])
    assert _config_from(args).operator.name == "Ada"
    with pytest.raises(ConfigError, match=r"operator\.name must be at most 200 printable"):
        load_config(write(tmp_path, '[operator]\nname = "a\\nb"\n'))


def test_the_failure_categories_of_labels_are_configured(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '[labels]\nfailure_categories = ["spilled", "late"]\n'))
    assert cfg.labels.vocabulary().failure_categories == ("spilled", "late")
    assert "collision" in AppConfig().labels.failure_categories
    for bad, message in (("[]", "at least one"), ('["a", "a"]', "distinct"), ('["two words"]', "is a word")):
        with pytest.raises(ConfigError, match=f"labels.failure_categories: .*{message}"):
            load_config(write(tmp_path, f"[labels]\nfailure_categories = {bad}\n"))
