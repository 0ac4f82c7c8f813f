"""The settings schema (file, then flags), the solve options, the sampling rule, and the
generation cache commands, on real files."""

from __future__ import annotations

import json
import math
import time

import pytest
from typer.testing import CliRunner

from solve_in_lean.errors import InputError
from solve_in_lean.lean.base import DEFAULT_TIMEOUT_S
from solve_in_lean.models.base import SamplingParams
from solve_in_lean.options import SAMPLED_TEMPERATURE, SolveOptions, stage_params
from solve_in_lean.settings import ConfigError, load_settings, settings_from_tables


def test_a_config_file_with_every_section(tmp_path, monkeypatch):
    (tmp_path / "h.lean").write_text("prelude\n")
    config = tmp_path / "lean-solve.toml"
    config.write_text('[lean]\nbackend = "kernel"\nmathlib = "auto"\ntimeout_s = 12.5\nworkers = 3\n'
                      'allow_axioms = ["myAx"]\nheader = "h.lean"\n'
                      '[model]\nbackend = "http"\nmodel = "m"\ncache = "gen.sqlite"\nmax_new_tokens = 99\n'
                      'stop = ["END"]\n[model.options]\nbase_url = "http://x"\n'
                      '[solve]\nsamples = 2\ncot_samples = 0\njudge = false\n')
    monkeypatch.chdir(tmp_path)
    s = load_settings()  # ./lean-solve.toml is found
    assert s.path == config and s.lean.backend == "kernel" and s.lean.mathlib is None and s.lean.workers == 3
    assert s.lean.header == tmp_path / "h.lean" and "myAx" in s.lean.policy().allowed_axioms
    assert s.solve == SolveOptions(samples=2, cot_samples=0, judge=False, timeout_s=12.5)
    assert s.model.sampling == SamplingParams(max_new_tokens=99, stop=("END",))
    assert s.model.options == {"base_url": "http://x"} and s.auto_temperature
    assert s.model_config(cache_by_default=False).cache == str(tmp_path / "gen.sqlite")


def test_defaults_and_the_cache_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LEAN_SOLVE_CONFIG", raising=False)
    monkeypatch.setenv("LEAN_SOLVE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path))
    s = load_settings()
    assert s.path is None and s.solve.timeout_s == DEFAULT_TIMEOUT_S and s.lean.mathlib is None
    assert s.model_config(cache_by_default=False).cache is None  # solve, formalize: off unless asked
    assert s.model_config(cache_by_default=True).cache == str(tmp_path / "cache" / "generations.sqlite")  # eval
    off = settings_from_tables({"model": {"cache": False}}, path=None, root=tmp_path)
    assert off.model_config(cache_by_default=True).cache is None
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


def test_flags_override_the_file_and_errors_name_the_flag(tmp_path):
    s = settings_from_tables({"lean": {"timeout_s": 5}, "model": {"temperature": 0.0}}, path=None, root=tmp_path)
    assert not s.auto_temperature  # a temperature the user set, even 0, is kept
    flagged = s.with_flags(solve={"timeout_s": 7.0, "samples": None}, lean={"mathlib": False},
                           model={"max_new_tokens": 5})
    assert flagged.solve.timeout_s == 7.0 and flagged.solve.samples == 8 and flagged.lean.mathlib is False
    assert flagged.model.sampling.max_new_tokens == 5
    for value in (math.inf, math.nan, 0, -1, 1e10):
        with pytest.raises(ConfigError, match="^--timeout must be a positive, finite number"):
            s.with_flags(solve={"timeout_s": value}, flags={"timeout_s": "--timeout"})
    auto = settings_from_tables({}, path=None, root=tmp_path)
    assert auto.auto_temperature and not auto.with_flags(model={"temperature": 0.3}).auto_temperature


@pytest.mark.parametrize("tables, message", [
    ({"lean": {"backend": "coq"}}, "[lean] backend must be one of auto, repl, lake, kernel"),
    ({"lean": {"timeout_s": "60"}}, "[lean] timeout_s must be"),
    ({"lean": {"timeuot_s": 60}}, "[lean] timeuot_s: unknown key"),
    ({"lean": {"header": "none.lean"}}, "[lean] header: "),
    ({"solve": {"samples": True}}, "[solve] samples must be a whole number"),
    ({"solve": {"timeout_s": 3}}, "[solve] timeout_s: the Lean timeout is set once, as [lean] timeout_s"),
    ({"model": {"n": 0}}, "[model]: n must be >= 1"),
    ({"model": {"cache": 3}}, "[model] cache must be a file name or false"),
])
def test_errors_name_the_table_and_key(tmp_path, tables, message):
    with pytest.raises(ConfigError) as info:
        settings_from_tables(tables, path=tmp_path / "c.toml", root=tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'c.toml'}: ") and message in str(info.value)


def test_solve_options_validate_once_and_check_problems():
    with pytest.raises(InputError, match="rounds must be a whole number of at least 0"):
        SolveOptions(rounds=-1)
    with pytest.raises(InputError, match="timeout_s must be"):
        SolveOptions(timeout_s=float("nan"))
    options = SolveOptions(max_problem_chars=10)
    assert options.check_problem("two + two?") == "two + two?"
    with pytest.raises(InputError, match="empty"):
        options.check_problem(" \n")
    with pytest.raises(InputError, match="11 characters, more than max_problem_chars=10"):
        options.check_problem("x" * 11)
    assert SolveOptions.from_dict(options.to_dict()) == options
    with pytest.raises(InputError, match=r"unknown option\(s\) \['k'\]"):
        SolveOptions.from_dict({"k": 8})


def test_the_sampling_rule():
    greedy = SamplingParams(temperature=0.0, top_p=0.9)
    assert stage_params(greedy, 1, auto_temperature=True) == greedy  # one sample: greedy
    several = stage_params(greedy, 4, auto_temperature=True)
    assert (several.n, several.temperature, several.top_p) == (4, SAMPLED_TEMPERATURE, 0.9)
    assert stage_params(greedy, 4, auto_temperature=False).temperature == 0.0  # chosen: kept
    warm = SamplingParams(temperature=0.3)
    assert stage_params(warm, 4, auto_temperature=True).temperature == 0.3


def test_cache_stats_and_prune_commands(tmp_path):
    from solve_in_lean.cli import _register, app
    from solve_in_lean.models.cache import CachedGenerator
    from solve_in_lean.models.scripted import ScriptedGenerator

    path = tmp_path / "gen.sqlite"
    for model in ("m1", "m2"):
        with CachedGenerator(ScriptedGenerator(["an answer"], model=model), path) as gen:
            gen.generate(["p1", "p2"], SamplingParams(n=2))
    _register()
    runner = CliRunner()
    stats = runner.invoke(app, ["cache", "stats", "--cache", str(path), "--json"])
    assert stats.exit_code == 0, stats.output
    info = json.loads(stats.stdout)
    assert info["requests"] == 4 and info["completions"] == 8
    assert info["models"] == {"scripted:m1": {"requests": 2, "completions": 4},
                              "scripted:m2": {"requests": 2, "completions": 4}}
    assert info["oldest"] <= info["newest"] <= time.time()
    text = runner.invoke(app, ["cache", "stats", "--cache", str(path)])
    assert "4 requests, 8 completions" in text.stdout and "scripted:m2: 2 requests" in text.stdout

    pruned = runner.invoke(app, ["cache", "prune", "--cache", str(path), "--model", "m1", "--json"])
    assert pruned.exit_code == 0 and json.loads(pruned.stdout)["deleted"] == 4
    assert json.loads(runner.invoke(app, ["cache", "stats", "--cache", str(path), "--json"]).stdout)["models"] == {
        "scripted:m2": {"requests": 2, "completions": 4}}
    assert json.loads(runner.invoke(app, ["cache", "prune", "--cache", str(path), "--older-than-days", "1",
                                          "--json"]).stdout)["deleted"] == 0  # all fresh
    assert json.loads(runner.invoke(app, ["cache", "prune", "--cache", str(path), "--older-than-days", "0",
                                          "--json"]).stdout)["deleted"] == 4

    nothing = runner.invoke(app, ["cache", "prune", "--cache", str(path)])
    assert nothing.exit_code == 2 and "say what to delete" in nothing.output
    missing = runner.invoke(app, ["cache", "stats", "--cache", str(tmp_path / "none.sqlite")])
    assert missing.exit_code == 2 and "no cache file there yet" in missing.output
    (tmp_path / "junk.sqlite").write_text("not a database")
    junk = runner.invoke(app, ["cache", "stats", "--cache", str(tmp_path / "junk.sqlite")])
    assert junk.exit_code == 2 and "not a lean-solve cache" in junk.output
