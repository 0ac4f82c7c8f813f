"""In-flight claims in the generation cache (issue 19, item 4): processes that share a cache and
ask for the same requests at once generate each one once; the others wait and read it.

Real processes (tests/cache_claim_child.py), a real SQLite file, and a scripted generator that
waits, logs every real generation to a shared file and signs its text with its pid.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest

from solve_in_lean.models.base import SamplingParams
from solve_in_lean.models.cache import CachedGenerator, _alive, _proc_stat
from solve_in_lean.models.scripted import ScriptedGenerator

CHILD = Path(__file__).with_name("cache_claim_child.py")
TIMEOUT_S = 120


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def no_child_outlives_its_test():
    """A failing test must not leave a child sleeping in its generator."""
    yield
    while STARTED:
        child = STARTED.pop()
        if child.poll() is None:
            child.kill()
        child.communicate()


def start(tmp_path: Path, name: str, **cfg: object) -> subprocess.Popen:
    """A child asking the shared cache; its stderr goes to `<name>.err` so a test can watch it."""
    cfg = {"path": str(tmp_path / "shared.sqlite"), "log": str(tmp_path / "log.jsonl"), **cfg}
    err = open(tmp_path / f"{name}.err", "w")
    try:
        child = subprocess.Popen([sys.executable, str(CHILD), json.dumps(cfg)], stdout=subprocess.PIPE,
                                 stderr=err, text=True)
    finally:
        err.close()
    STARTED.append(child)
    return child


def finish(child: subprocess.Popen) -> dict:
    out, _ = child.communicate(timeout=TIMEOUT_S)
    assert child.returncode == 0, f"child {child.pid} failed with {child.returncode}: {child.args[-1]}"
    return json.loads(out)


def events(tmp_path: Path, kind: str) -> list[dict]:
    path = tmp_path / "log.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [e for e in map(json.loads, lines) if e["event"] == kind]


def wait_until(condition, what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def start_together(tmp_path: Path, configs: dict[str, dict]) -> dict[str, subprocess.Popen]:
    """Start every child, wait until each has opened the cache, then let them all ask at once."""
    go = tmp_path / "go"
    children = {name: start(tmp_path, name, ready=str(tmp_path / f"{name}.ready"), go=str(go), **cfg)
                for name, cfg in configs.items()}
    wait_until(lambda: all((tmp_path / f"{n}.ready").exists() for n in children), "the children to start")
    go.touch()
    return children


def claims_left(tmp_path: Path) -> int:
    with closing(sqlite3.connect(tmp_path / "shared.sqlite")) as db:
        return db.execute("SELECT COUNT(*) FROM claims").fetchone()[0]


def test_four_processes_asking_the_same_requests_generate_each_once(tmp_path):
    prompts = [f"p{i}" for i in range(12)]
    children = start_together(tmp_path, {f"run{k}": {"prompts": prompts, "n": 2, "chunk_size": 3, "delay_s": 0.5}
                                         for k in range(4)})
    outputs = {name: finish(child) for name, child in children.items()}
    made = Counter(e["prompt"] for e in events(tmp_path, "gen"))
    assert made == Counter(prompts), f"generations per prompt: {made}"
    first = outputs["run0"]["texts"]
    assert all(out["texts"] == first for out in outputs.values()), "the runs got different completions"
    assert sum(out["generated"] for out in outputs.values()) == 24
    assert sum(out["hits"] for out in outputs.values()) == 3 * 24  # what the others waited for are hits
    waiting = [n for n in children if "lean-solve: waiting for" in (tmp_path / f"{n}.err").read_text()]
    assert len(waiting) >= 1
    assert all((tmp_path / f"{n}.err").read_text().count("waiting for") <= 1 for n in children)  # said once
    assert claims_left(tmp_path) == 0


def test_overlapping_lists_in_different_orders_finish_without_duplicates(tmp_path):
    forward = [f"p{i}" for i in range(30)]
    shuffled = [f"p{i}" for i in range(15, 45)]
    random.Random(7).shuffle(shuffled)
    lists = {"forward": forward, "backward": forward[::-1], "shuffled": shuffled}
    children = start_together(tmp_path, {name: {"prompts": prompts, "chunk_size": 2, "delay_s": 0.1}
                                         for name, prompts in lists.items()})
    outputs = {name: finish(child) for name, child in children.items()}  # a deadlock would time out here
    made = Counter(e["prompt"] for e in events(tmp_path, "gen"))
    assert made == Counter(f"p{i}" for i in range(45)), f"generated more than once: {made - Counter(set(made))}"
    answers: dict[str, set[str]] = {}
    for name, prompts in lists.items():
        for prompt, texts in zip(prompts, outputs[name]["texts"]):
            answers.setdefault(prompt, set()).add(texts[0])
    assert all(len(seen) == 1 for seen in answers.values()), "a prompt got different completions"
    assert claims_left(tmp_path) == 0


def test_a_killed_owner_is_taken_over(tmp_path):
    prompts = [f"p{i}" for i in range(6)]
    owner = start(tmp_path, "owner", prompts=prompts, delay_s=3600)
    wait_until(lambda: events(tmp_path, "begin"), "the owner to claim and start generating")
    waiter = start(tmp_path, "waiter", prompts=prompts)
    wait_until(lambda: "waiting for 6 requests" in (tmp_path / "waiter.err").read_text(), "the waiter to wait")
    killed_at = time.time()
    owner.send_signal(signal.SIGKILL)  # not reaped until the waiter is done: a zombie still has its pid
    out = finish(waiter)
    owner.wait(timeout=TIMEOUT_S)
    gens = events(tmp_path, "gen")
    assert sorted(e["prompt"] for e in gens) == sorted(prompts)
    assert all(e["pid"] == waiter.pid and e["t"] > killed_at for e in gens)
    assert out["texts"] == [[f"{p}#0 by {waiter.pid}"] for p in prompts]
    assert out["waited_s"] > 0 and claims_left(tmp_path) == 0


def test_a_failed_generation_drops_its_claims_and_the_waiter_generates(tmp_path):
    prompts = [f"p{i}" for i in range(4)]
    owner = start(tmp_path, "owner", prompts=prompts, delay_s=2.0, fail=True)
    wait_until(lambda: events(tmp_path, "begin"), "the owner to claim and start generating")
    waiter = start(tmp_path, "waiter", prompts=prompts)
    out = finish(waiter)
    owner.communicate(timeout=TIMEOUT_S)
    assert owner.returncode == 1 and "told to fail" in (tmp_path / "owner.err").read_text()
    [failed] = events(tmp_path, "fail")
    gens = events(tmp_path, "gen")
    assert sorted(e["prompt"] for e in gens) == sorted(prompts)
    assert all(e["pid"] == waiter.pid and e["t"] >= failed["t"] for e in gens)
    assert "waiting for 4 requests" in (tmp_path / "waiter.err").read_text()
    assert out["generated"] == 4 and claims_left(tmp_path) == 0


# --- in one process: claims written by hand, threads ---------------------------------------

def own_start() -> int:
    stat = _proc_stat(os.getpid())
    assert stat is not None
    return stat[1]


def claim_by_hand(path: Path, prompt: str, *, pid: int, host: str, started: int | None, lease: float) -> None:
    """What another process's claim on `prompt` looks like in the file."""
    from solve_in_lean.models.cache import request_key

    with CachedGenerator(ScriptedGenerator([]), path):
        pass  # creates the schema
    key = request_key("scripted", "scripted", prompt, SamplingParams())
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("INSERT INTO claims VALUES (?, 'someone-else', ?, ?, ?, ?)", (key, pid, host, started, lease))


def test_a_live_owner_is_waited_for_only_as_long_as_claim_wait_s(tmp_path, capsys):
    path = tmp_path / "c.sqlite"
    claim_by_hand(path, "q", pid=os.getpid(), host=socket.gethostname(), started=own_start(), lease=time.time())
    cache = CachedGenerator(ScriptedGenerator(["mine"]), path, claim_wait_s=0.5)
    began = time.monotonic()
    [[completion]] = cache.generate(["q"], SamplingParams())
    assert completion.text == "mine" and time.monotonic() - began >= 0.5 and cache.waited_s >= 0.5
    err = capsys.readouterr().err
    assert err.count("waiting for 1 requests") == 1 and "no request waited for finished in 0.5 s" in err
    claim_by_hand(path, "r", pid=os.getpid(), host=socket.gethostname(), started=own_start(), lease=time.time())
    cache.generate(["r"], SamplingParams())
    assert "waiting for" not in capsys.readouterr().err  # said once per cache, not once per call
    assert cache.waited_s >= 1.0


def test_claims_of_dead_owners_are_taken_over_at_once(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # reaped: its pid no longer runs
    cases = {"gone": dict(pid=gone.pid, host=socket.gethostname(), started=None, lease=time.time()),
             "pid reused": dict(pid=os.getpid(), host=socket.gethostname(), started=own_start() - 1,
                                lease=time.time()),
             "lease expired": dict(pid=1, host="another-host", started=None, lease=time.time() - 1000)}
    for name, claim in cases.items():
        path = tmp_path / f"{name}.sqlite"
        claim_by_hand(path, "q", **claim)
        cache = CachedGenerator(ScriptedGenerator(["mine"]), path, claim_wait_s=30, claim_lease_s=60)
        assert cache.generate(["q"], SamplingParams())[0][0].text == "mine"
        assert cache.waited_s == 0, name
        assert claims_left_at(path) == 0, f"{name}: the dead claim was not taken over"


def test_a_fresh_claim_from_another_host_is_waited_for(tmp_path, capsys):
    path = tmp_path / "c.sqlite"
    claim_by_hand(path, "q", pid=1, host="another-host", started=None, lease=time.time())
    cache = CachedGenerator(ScriptedGenerator(["mine"]), path, claim_wait_s=0.3, claim_lease_s=60)
    cache.generate(["q"], SamplingParams())
    assert cache.waited_s >= 0.3 and "pid 1 on another-host" in capsys.readouterr().err


def claims_left_at(path: Path) -> int:
    with closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT COUNT(*) FROM claims").fetchone()[0]


def test_alive_tells_a_process_from_a_later_one_with_its_pid():
    assert _alive(os.getpid(), own_start()) and _alive(os.getpid(), None)
    assert not _alive(os.getpid(), own_start() + 1)


def test_two_threads_sharing_one_cache_generate_once(tmp_path):
    calls: list[str] = []

    class Slow(ScriptedGenerator):
        def generate(self, prompts, params):
            calls.extend(prompts)
            time.sleep(0.3)
            return super().generate(prompts, params)

    cache = CachedGenerator(Slow(lambda p, i: f"{p}!"), tmp_path / "c.sqlite")
    results: list = [None, None]

    def ask(slot: int) -> None:
        results[slot] = cache.generate(["a", "b", "c"], SamplingParams())

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT_S)
    assert sorted(calls) == ["a", "b", "c"]
    assert results[0] == results[1] and [[c.text for c in cs] for cs in results[0]] == [["a!"], ["b!"], ["c!"]]
    assert cache.generated == 3 and cache.hits == 3


def test_lease_is_renewed_while_a_chunk_runs(tmp_path):
    """An owner on another host is judged by its lease alone, so a slow chunk must keep it fresh."""
    path = tmp_path / "c.sqlite"
    leases: list[float] = []

    class Watching(ScriptedGenerator):
        def generate(self, prompts, params):
            for _ in range(3):
                time.sleep(0.25)
                with closing(sqlite3.connect(path)) as db:
                    leases.append(db.execute("SELECT lease FROM claims").fetchone()[0])
            return super().generate(prompts, params)

    CachedGenerator(Watching(["x"]), path, claim_lease_s=0.4).generate(["q"], SamplingParams())
    assert leases == sorted(leases) and leases[-1] > leases[0], f"the lease was not renewed: {leases}"


def test_the_config_key_sets_the_wait_and_defaults_to_the_caches_own(tmp_path):
    from solve_in_lean.models import ModelConfig, generator_from_config
    from solve_in_lean.models.cache import CLAIM_WAIT_S

    assert ModelConfig().cache_claim_wait_s == CLAIM_WAIT_S
    cfg = ModelConfig.from_dict({"backend": "http", "model": "m", "cache": str(tmp_path / "c.sqlite"),
                                 "cache_claim_wait_s": 5})
    cache = generator_from_config(cfg)
    assert isinstance(cache, CachedGenerator) and cache.claim_wait_s == 5 and cache._inner is None


def test_stats_count_claims_and_prune_drops_only_dead_ones(tmp_path):
    from solve_in_lean.models.cache import cache_stats, prune_cache

    path = tmp_path / "c.sqlite"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    claim_by_hand(path, "live", pid=os.getpid(), host=socket.gethostname(), started=own_start(), lease=time.time())
    claim_by_hand(path, "dead", pid=gone.pid, host=socket.gethostname(), started=None, lease=time.time())
    claim_by_hand(path, "expired", pid=1, host="another-host", started=None, lease=time.time() - 1000)
    assert cache_stats(path)["claims"] == {"in_flight": 1, "dead": 2}
    shown = subprocess.run([sys.executable, "-m", "solve_in_lean", "cache", "stats", "--cache", str(path)],
                           capture_output=True, text=True)
    assert shown.returncode == 0 and "claims: 1 being generated now, 2 left by runs that died" in shown.stdout
    prune_cache(path, older_than_s=1e9)
    assert cache_stats(path)["claims"] == {"in_flight": 1, "dead": 0} and claims_left_at(path) == 1


def test_stats_of_a_cache_written_before_claims_existed(tmp_path):
    from solve_in_lean.models.cache import cache_stats

    path = tmp_path / "old.sqlite"
    with CachedGenerator(ScriptedGenerator(["a"]), path) as gen:
        gen.generate(["p"], SamplingParams())
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("DROP TABLE claims")
    info = cache_stats(path)
    assert info["claims"] == {"in_flight": 0, "dead": 0} and info["completions"] == 1
