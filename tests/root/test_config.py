"""Daemon config: TOML sections, unknown keys named by path, CLI overrides, the shipped example."""

from __future__ import annotations

from pathlib import Path

import pytest

from posebridge.config import ServeConfig, apply_overrides, load_config, parse_value, set_option, tomllib
from posebridge.errors import ConfigError, InputFileError
from tests.helpers.paths import REPO


def parse_toml(text: str) -> dict:
    return tomllib.loads(text)


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "posebridge.toml"
    p.write_text(text)
    return p


def test_defaults_bind_localhost():
    cfg = load_config(None)
    assert cfg.publish.address == "tcp://127.0.0.1:5570"
    assert cfg.control.address == "tcp://127.0.0.1:5571"
    assert cfg.source.realtime is True and cfg.record.path == ""


def test_sections_load_and_coerce(tmp_path):
    cfg = load_config(write(tmp_path, """
[source]
spec = 0
realtime = false
[faces]
detector = "haar"
redetect_every = 5
options = { min_size = 30 }
[publish]
address = "tcp://127.0.0.1:6000"
hwm = 10
mirror = true
[run]
wait_subscriber_s = 1
"""))
    assert cfg.source.spec == "0" and cfg.source.realtime is False
    assert cfg.faces.options == {"min_size": 30} and cfg.faces.redetect_every == 5
    assert cfg.publish.hwm == 10 and cfg.publish.mirror is True
    assert cfg.run.wait_subscriber_s == 1.0 and isinstance(cfg.run.wait_subscriber_s, float)


@pytest.mark.parametrize("text, key", [
    ("[filter]\nproces_noise = 1.0\n", "filter.proces_noise: unknown key"),
    ("[publish]\nadress = 'x'\n", "publish.adress: unknown key"),
    ("[sauce]\nspec = 'x'\n", "sauce: unknown key"),
    ("[faces]\nredetect_every = 'often'\n", "faces.redetect_every: expected an integer"),
    ("[publish]\nmirror = 1\n", "publish.mirror: expected true or false"),
])
def test_bad_keys_name_the_path(tmp_path, text, key):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    assert key in str(err.value)
    assert "posebridge.toml" in str(err.value) and "\n" not in str(err.value)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(InputFileError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(InputFileError, match="not valid TOML"):
        load_config(write(tmp_path, "[source\nspec="))


def test_filter_params_checked_against_filter_config(tmp_path):
    from posebridge.filtering.config import FilterConfig

    text = "[filter]\nlost_after_s = 1\nkind = 'none'\nwrap = [true, true, false]\n"
    cfg = load_config(write(tmp_path, text))
    assert cfg.filter == {"lost_after_s": 1, "kind": "none", "wrap": [True, True, False]}
    fc = FilterConfig().replace(**cfg.filter)  # what the pipeline does with it
    assert fc.lost_after_s == 1.0 and fc.kind == "none" and fc.wrap == (True, True, False)


def test_overrides():
    cfg = ServeConfig()
    apply_overrides(cfg, ["publish.hwm=7", "source.spec=clip.mp4", "faces.all_faces=true"])
    assert cfg.publish.hwm == 7 and cfg.source.spec == "clip.mp4" and cfg.faces.all_faces is True
    set_option(cfg, "run.max_frames", 3)
    assert cfg.run.max_frames == 3
    with pytest.raises(ConfigError, match="publish.nope: unknown key"):
        apply_overrides(cfg, ["publish.nope=1"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_overrides(cfg, ["publish.hwm"])
    assert parse_value("0.5") == 0.5 and parse_value("true") is True and parse_value("a/b.mp4") == "a/b.mp4"


def test_example_config_documents_every_option():
    """examples/posebridge.toml loads and names every field of every section."""
    import dataclasses

    path = REPO / "examples" / "posebridge.toml"
    cfg = load_config(path)
    text = path.read_text()
    for section in dataclasses.fields(ServeConfig):
        assert f"[{section.name}]" in text
        value = getattr(cfg, section.name)
        if dataclasses.is_dataclass(value):
            for f in dataclasses.fields(value):
                key = f"{section.name}.{f.name}"
                assert f"{f.name} =" in text or f"[{key}]" in text, f"{key} not documented"
    assert cfg.publish.address == "tcp://127.0.0.1:5570"
    from posebridge.filtering.config import FilterConfig

    filter_block = text[text.index("[filter]"):text.index("[publish]")]
    for f in dataclasses.fields(FilterConfig):
        assert f"# {f.name} = " in filter_block, f"filter.{f.name} not documented"
    FilterConfig().replace(**cfg.filter)
    # the commented defaults parse as TOML and are accepted by the filter
    lines = [ln[2:].split("#")[0] for ln in filter_block.splitlines() if ln.startswith("# ") and " = " in ln]
    FilterConfig().replace(**parse_toml("\n".join(lines)))


def test_serve_flags_override_the_file(tmp_path):
    from posebridge.cli import build_parser
    from posebridge.commands.serve import config_from_args

    toml = write(tmp_path, "[source]\nspec = 'a.mp4'\n[publish]\nhwm = 5\n[filter]\nlost_after_s = 2.0\n"
                           "process_noise = 3.0\n")
    args = build_parser().parse_args([
        "serve", "--config", str(toml), "--source", "b.mp4", "--mirror", "--fast", "--set", "publish.hwm=9",
        "--filter.lost_after_s", "0.7", "--no-control"])
    cfg = config_from_args(args)
    assert cfg.source.spec == "b.mp4" and cfg.source.realtime is False and cfg.publish.mirror is True
    assert cfg.publish.hwm == 9 and cfg.control.enabled is False
    assert cfg.filter == {"lost_after_s": 0.7, "process_noise": 3.0}
    with pytest.raises(ConfigError, match="filter.kind"):
        config_from_args(build_parser().parse_args(["serve", "--filter.kind", "wobbly"]))
