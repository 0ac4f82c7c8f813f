"""`--ray ADDRESS` and `[ray]` reach the Lean checker of every batch command: settings validated
with the key named, the ray backend built around the configured inner backend, and a cluster
that cannot be reached is one sentence before any model loads."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lean_prelude import GOOD_PROOF, MINI_PRELUDE, WRONG_PROOF
from solve_in_lean.errors import InputError
from solve_in_lean.settings import ConfigError, RaySettings, Settings, load_settings

os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def test_ray_table_and_flag(tmp_path: Path) -> None:
    cfg = tmp_path / "lean-solve.toml"
    cfg.write_text('[lean]\nbackend = "kernel"\n[ray]\naddress = "auto"\nactors = 3\nactor_memory_mb = 2048\n')
    settings = load_settings(cfg)
    assert settings.ray == RaySettings(address="auto", actors=3, actor_memory_mb=2048)
    flagged = settings.with_flags(ray={"address": "10.0.0.1:6379"}, flags={"address": "--ray"})
    assert flagged.ray.address == "10.0.0.1:6379" and flagged.ray.actors == 3
    assert Settings().ray.address is None  # Ray is off unless asked for


@pytest.mark.parametrize("table, fragment", [
    ('address = ""', "[ray] address must be local, auto or HOST:PORT"),
    ("actors = 0", "[ray] actors must be a whole number of at least 1"),
    ("actors = true", "[ray] actors must be a whole number"),
    ('nodes = 2', "[ray] nodes: unknown key; known keys of [ray]: address, actors, actor_memory_mb"),
])
def test_bad_ray_table_names_the_key(tmp_path: Path, table: str, fragment: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[ray]\n{table}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert fragment in str(info.value)
    assert isinstance(info.value, InputError)


def test_bad_ray_flag_names_the_flag() -> None:
    with pytest.raises(ConfigError, match="--ray must be local, auto or HOST:PORT"):
        Settings().with_flags(ray={"address": "two words"}, flags={"address": "--ray"})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: nothing listens there


@pytest.mark.parametrize("command", [["solve", "-i"], ["formalize", "-i"], ["eval", "--task", "lean-solve", "--data"]])
def test_unreachable_cluster_is_one_sentence_before_the_model(tmp_path: Path, command: list[str]) -> None:
    pytest.importorskip("ray", reason="needs Ray: pip install 'lean-solve[ray]' (part of the test extra)")
    problems = tmp_path / "p.jsonl"
    problems.write_text('{"id": "a", "question": "What is one plus one?", "answer": "2"}\n')
    header = tmp_path / "prelude.lean"
    header.write_text(MINI_PRELUDE)
    address = f"127.0.0.1:{_closed_port()}"
    proc = subprocess.run(
        [sys.executable, "-m", "solve_in_lean", *command, str(problems), "-o", str(tmp_path / "out"),
         "--ray", address, "--backend", "kernel", "--header", str(header),
         "--model", "/nonexistent/model", "--model-backend", "transformers"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "LEAN_SOLVE_PROGRESS": "0", "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and f"could not reach a Ray cluster at {address}" in lines[0], proc.stderr
    assert "no model available" not in proc.stderr  # the cluster is checked before the model loads


@pytest.mark.ray
@pytest.mark.timeout(240)
def test_make_checker_runs_the_inner_backend_on_a_private_cluster() -> None:
    pytest.importorskip("ray", reason="needs Ray: pip install 'lean-solve[ray]' (part of the test extra)")
    from solve_in_lean import raycluster
    from solve_in_lean.lean import get_checker
    from solve_in_lean.settings import make_checker

    settings = Settings().with_flags(lean={"backend": "kernel"}, ray={"address": "local", "actors": 1,
                                                                      "actor_memory_mb": 1024})
    checker = make_checker(settings)
    try:
        assert checker.name == "ray" and checker.inner == "kernel" and checker.actors == 1
        codes = [MINI_PRELUDE + GOOD_PROOF, MINI_PRELUDE + WRONG_PROOF]
        on_ray = [r.status for r in checker.check_many(codes)]
        with get_checker("kernel") as local:
            assert on_ray == [r.status for r in local.check_many(codes)] == ["ok", "error"]
    finally:
        checker.close()
        raycluster.shutdown()


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "solve_in_lean", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "LEAN_SOLVE_PROGRESS": "0", "HF_HUB_OFFLINE": "1"})


def test_augment_and_iterate_take_ray_too(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="needs Ray: pip install 'lean-solve[ray]' (part of the test extra)")
    address = f"127.0.0.1:{_closed_port()}"
    header = tmp_path / "prelude.lean"
    header.write_text(MINI_PRELUDE)
    problems = tmp_path / "p.jsonl"
    problems.write_text('{"id": "a", "question": "Tom has 2 apples and buys 3 more. How many?", "answer": "5"}\n')
    root = Path(__file__).resolve().parents[1]
    for args in (["augment", "-i", str(problems), "-m", "numbers", "-o", str(tmp_path / "new.jsonl"),
                  "-b", "kernel", "--header", str(header)],
                 ["iterate", "--config", str(root / "examples" / "iterate_tiny.toml"), "--out", str(tmp_path / "it")]):
        proc = _run(*args, "--ray", address)
        assert proc.returncode == 2, (args[0], proc.stderr)
        assert f"could not reach a Ray cluster at {address}" in proc.stderr and "Traceback" not in proc.stderr


def test_doctor_reports_the_cluster_it_is_given() -> None:
    pytest.importorskip("ray", reason="needs Ray: pip install 'lean-solve[ray]' (part of the test extra)")
    address = f"127.0.0.1:{_closed_port()}"
    proc = _run("doctor", "--json", "--ray", address)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)[-1]
    assert row["item"] == "ray cluster" and row["status"] == "missing" and address in row["detail"]
    plain = _run("doctor", "--json")
    assert all(r["item"] != "ray cluster" for r in json.loads(plain.stdout))  # only when asked
