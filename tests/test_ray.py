"""Scale-out on Ray, on real local clusters: the `ray` Lean backend against the real bundled
kernel (same verdicts, same order; a SIGKILLed actor, a frozen actor, a lost node), the Ray
generator on the tiny transformers model, joining a cluster started with `ray start`.

Clusters stay small (1-2 CPUs per node, two actors): the machine has 2 cores shared with
other jobs. Every cluster is shut down in teardown, and every test that kills something
checks that no Lean process it started is left: Lean processes are found by the kernel
driver's path and an environment variable only this test's actors carry.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from lean_prelude import GOOD_PROOF, MINI_PRELUDE, WRONG_PROOF, slow_proof

ray = pytest.importorskip("ray", reason="needs Ray: pip install 'lean-solve[ray]' (part of the test extra)")

from solve_in_lean import raycluster  # noqa: E402
from solve_in_lean.lean import get_checker  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.timeout(240)]

os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # no token written to ~/.ray for throwaway clusters
TAG = f"h8-ray-test-{uuid.uuid4().hex[:12]}"
ACTOR_ENV = {"env_vars": {"LEAN_SOLVE_RAY_TEST": TAG}}
SMALL = {"actor_memory_mb": 1024}
"""Prelude files need little memory; Lean's own cap (memory_mb) stays at its default."""
FAST_HEALTH = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 300,
               "health_check_timeout_ms": 300, "health_check_failure_threshold": 3}
"""Notice a dead node in about a second instead of Ray's default half minute."""


def comparable(result) -> dict:
    d = result.to_dict()
    d.pop("elapsed_s")
    d.pop("backend")
    return d


def lean_driver() -> str:
    from solve_in_lean.lean.kernel import driver_command, find_library

    return driver_command(find_library())[0]


def our_lean_processes() -> list[int]:
    """Running Lean processes started by this module's actors."""
    driver = lean_driver().encode()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
            env = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue  # it ended while we looked
        if argv0 == driver and f"LEAN_SOLVE_RAY_TEST={TAG}".encode() in env.split(b"\0"):
            found.append(int(pid))
    return found


def wait_for(condition, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def assert_no_lean_left() -> None:
    wait_for(lambda: not our_lean_processes(), 15, "the Lean processes of dead actors to die")


def in_background(fn):
    """Run fn() on a thread; returns a callable that joins it and gives its result."""
    box: dict = {}
    thread = threading.Thread(target=lambda: box.update(value=fn()), daemon=True)
    thread.start()

    def result(timeout_s: float = 180):
        thread.join(timeout_s)
        assert not thread.is_alive(), "the checks did not finish"
        return box["value"]

    return result


@pytest.fixture(scope="class")
def local_ray():
    """A private one-machine cluster for a class of tests: 4 logical CPUs, so the class's shared
    checker (2 actors) and one more pool fit side by side; most of them sit idle."""
    if ray.is_initialized():
        ray.shutdown()
    assert raycluster.connect(num_cpus=4)
    yield
    ray.shutdown()


@pytest.fixture(scope="class")
def ray_kernel(local_ray):
    checker = get_checker("ray", inner="kernel", actors=2, timeout_s=60, runtime_env=ACTOR_ENV,
                          deadline_grace_s=30, **SMALL)
    yield checker
    checker.close()
    assert_no_lean_left()


def verdict_files() -> list:
    from solve_in_lean.lean import CheckRequest

    return [
        MINI_PRELUDE + GOOD_PROOF,
        MINI_PRELUDE + WRONG_PROOF,
        CheckRequest(GOOD_PROOF, header=MINI_PRELUDE),
        CheckRequest(WRONG_PROOF, header=MINI_PRELUDE),
        "theorem t : Nat := 1\n",  # no prelude: Lean reports errors
        MINI_PRELUDE + "theorem bad : Eq N.zero N.one := sorry_is_not_here\n",
        b"prelude\n\xff\xfe not utf-8",  # refused before Lean runs
        CheckRequest(MINI_PRELUDE + slow_proof(60), timeout_s=2),  # Lean's own timeout, inside the actor
        MINI_PRELUDE + "#print axioms N.add\n",
    ] + [MINI_PRELUDE + (GOOD_PROOF if i % 3 else WRONG_PROOF) for i in range(8)]


@pytest.mark.usefixtures("local_ray")
class TestOneMachine:
    def test_same_verdicts_and_order_as_the_kernel_backend(self, ray_kernel, kernel):
        files = verdict_files()
        expected = [comparable(r) for r in kernel.check_many(files, workers=2)]
        got = ray_kernel.check_many(files)
        assert [comparable(r) for r in got] == expected
        assert {r.backend for r in got} == {"ray"}
        statuses = [r.status for r in got]
        assert {"ok", "error", "invalid_input", "timeout"} <= set(statuses)
        assert ray_kernel.lean_version == kernel.lean_version
        assert ray_kernel.evaluates is False
        assert not our_lean_processes()

    def test_a_backend_missing_on_the_cluster_is_one_clear_sentence(self):
        from solve_in_lean.lean import LeanUnavailable

        broken = {"env_vars": {"LEAN_SOLVE_KERNEL_LIB": "/nonexistent/libleanshared.so"}}  # only in the actors
        with pytest.raises(LeanUnavailable) as caught:
            get_checker("ray", inner="kernel", actors=1, runtime_env=broken, **SMALL)
        message = str(caught.value)
        assert message == "on the Ray cluster: LEAN_SOLVE_KERNEL_LIB=/nonexistent/libleanshared.so is not a file"
        assert "\n" not in message and "Traceback" not in message

    def test_the_options_the_settings_pass_work_as_they_do_locally(self):
        from solve_in_lean.lean import auto_backend

        code = MINI_PRELUDE + WRONG_PROOF
        with get_checker("ray", timeout_s=30, workers=1, mathlib=None, runtime_env=ACTOR_ENV, **SMALL) as checker:
            assert (checker.inner, checker.actors) == (auto_backend(), 1)  # inner `auto`, resolved in the actor
            result = checker.check(code)
        with get_checker(auto_backend(), timeout_s=30, workers=1, mathlib=None) as local:
            assert comparable(result) == comparable(local.check(code))

    def test_memory_reservations_keep_ray_from_overcommitting_a_node(self, kernel):
        from solve_in_lean.lean.ray_backend import actors_that_fit

        node_mb = int(raycluster.cluster_info().memory_gb * 1024)
        assert actors_that_fit(ray, 1, 1024) == 4  # CPUs decide: 4 logical CPUs
        assert actors_that_fit(ray, 1, node_mb // 2.5) == 2  # memory decides
        big = int(node_mb * 0.6)  # two of these do not fit the node: Ray must start only one
        with get_checker("ray", inner="kernel", actors=2, actor_memory_mb=big, restart_timeout_s=5,
                         timeout_s=30, runtime_env=ACTOR_ENV) as checker:
            assert checker.actors == 1
            code = MINI_PRELUDE + GOOD_PROOF
            assert comparable(checker.check(code)) == comparable(kernel.check(code))

    def test_dispatch_prefers_the_actor_with_the_header_warm(self, ray_kernel):
        header_a, header_b = (MINI_PRELUDE + f"-- header {uuid.uuid4().hex}\n" for _ in range(2))
        ray_kernel.check(GOOD_PROOF, header=header_a)
        ray_kernel.check(GOOD_PROOF, header=header_b)  # goes to the other, longer idle actor
        warm = [s for s in ray_kernel._slots if header_a in s.headers]
        assert len(warm) == 1 and header_b not in warm[0].headers
        for _ in range(3):
            slot = ray_kernel._acquire(header_a)
            ray_kernel._release(slot)
            assert slot is warm[0]

    def test_sigkill_of_an_actor_restarts_it_and_retries_its_check(self, ray_kernel, kernel):
        code = MINI_PRELUDE + slow_proof(16)
        before = ray_kernel.actor_pids()
        pending = in_background(lambda: ray_kernel.check_many([code]))
        wait_for(lambda: our_lean_processes(), 60, "Lean to start in an actor")
        lean_pid = our_lean_processes()[0]
        victim = int(Path(f"/proc/{lean_pid}/stat").read_text().rsplit(")", 1)[1].split()[1])  # its parent
        assert victim in before
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: not Path(f"/proc/{lean_pid}").exists()
                 or Path(f"/proc/{lean_pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z",
                 15, "the killed actor's Lean to die with it")
        [result] = pending()
        assert comparable(result) == comparable(kernel.check(code))
        assert result.status == "ok"
        after = ray_kernel.actor_pids()
        assert victim not in after and len(after) == 2  # restarted by Ray, not dropped
        assert ray_kernel.failed_attempts == 1
        assert_no_lean_left()

    def test_a_frozen_actor_is_restarted_at_the_driver_deadline(self, local_ray, kernel):
        checker = get_checker("ray", inner="kernel", actors=1, timeout_s=4, deadline_grace_s=2,
                              runtime_env=ACTOR_ENV, **SMALL)
        try:
            [pid] = checker.actor_pids()
            code = MINI_PRELUDE + GOOD_PROOF
            os.kill(pid, signal.SIGSTOP)  # stuck: Lean's own timeout can never answer for it
            start = time.monotonic()
            result = checker.check(code)
            assert time.monotonic() - start >= 6  # waited for the deadline (4 s + 2 s), then retried
            assert comparable(result) == comparable(kernel.check(code))
            assert checker.actor_pids() != [pid]
        finally:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass  # Ray already killed it, as it should
            checker.close()
        assert_no_lean_left()

    def test_a_check_that_keeps_its_actor_stuck_fails_closed(self, local_ray):
        checker = get_checker("ray", inner="kernel", actors=1, timeout_s=3, deadline_grace_s=1, retries=0,
                              runtime_env=ACTOR_ENV, **SMALL)
        stopper = threading.Event()

        def freeze_every_new_actor() -> None:
            seen: set[int] = set()
            while not stopper.is_set():
                for lean in our_lean_processes():  # freeze the actor as soon as its Lean starts
                    parent = int(Path(f"/proc/{lean}/stat").read_text().rsplit(")", 1)[1].split()[1])
                    if parent not in seen:
                        seen.add(parent)
                        os.kill(parent, signal.SIGSTOP)
                time.sleep(0.02)

        freezer = threading.Thread(target=freeze_every_new_actor, daemon=True)
        freezer.start()
        try:
            result = checker.check(MINI_PRELUDE + slow_proof(22))
        finally:
            stopper.set()
            freezer.join()
            checker.close()
        assert result.status == "timeout"
        assert result.detail == "the check failed on 1 Ray actors: no answer within 4 s, actor restarted"
        assert checker.failed_attempts == 1
        assert_no_lean_left()

    def test_ray_generator_matches_the_local_generator(self, local_ray, tiny_model_dir, torch_one_thread):
        from solve_in_lean.models import SamplingParams, load_generator

        prompts = ["Natalia sold clips", "theorem foo", [{"role": "user", "content": "2 + 2 = ?"}], "x"]
        params = SamplingParams(n=2, temperature=1.0, max_new_tokens=6, seed=7)
        local = load_generator("transformers", str(tiny_model_dir), device="cpu", batch_size=1)
        expected = local.generate(prompts, params)
        remote = load_generator("ray", str(tiny_model_dir), inner="transformers", replicas=2, num_cpus=1,
                                device="cpu", batch_size=1)
        try:
            got = remote.generate(prompts, params)
            assert remote.replicas == 2
            assert [[c.text for c in row] for row in got] == [[c.text for c in row] for row in expected]
            assert got == expected
            victim = remote.replica_pids()[0]
            os.kill(victim, signal.SIGKILL)  # Ray restarts the replica and runs its part again
            assert remote.generate(prompts, params) == expected
            assert victim not in remote.replica_pids()
        finally:
            remote.close()
        assert len({c.text for row in got for c in row}) > 1  # sampled, not one constant string

    def test_a_vllm_replica_on_a_cluster_without_gpus_is_one_clear_sentence(self):
        from solve_in_lean.models import GenerationError, load_generator

        with pytest.raises(GenerationError, match="a vllm replica needs 2 GPUs but the Ray cluster has 0"):
            load_generator("ray", "some/model", inner="vllm", tensor_parallel_size=2)
        assert ray.is_initialized()  # the class's cluster stays up: the generator did not own it


def test_a_lost_node_loses_no_check(kernel):
    """Three nodes, two actors; the processes of one actor's node are killed mid-run."""
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "_system_config": FAST_HEALTH})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    checker = None
    try:
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        cluster.wait_for_nodes()
        files = [MINI_PRELUDE + (slow_proof(14) if i % 4 == 0 else GOOD_PROOF if i % 3 else WRONG_PROOF)
                 for i in range(16)]
        clean = [comparable(r) for r in kernel.check_many(files, workers=2)]
        checker = get_checker("ray", inner="kernel", actors=2, timeout_s=60, deadline_grace_s=30,
                              runtime_env=ACTOR_ENV, **SMALL)
        nodes = {ray.get(s.actor.ready.remote())["node_id"] for s in checker._slots}
        victim = next(w for w in workers if w.node_id in nodes)
        pending = in_background(lambda: checker.check_many(files))
        wait_for(lambda: len(our_lean_processes()) > 0, 60, "checks to be running")
        time.sleep(0.5)
        cluster.remove_node(victim, allow_graceful=False)
        results = pending()
        assert checker.failed_attempts >= 1  # a check was running on the lost node and ran again
        assert len(results) == len(files)
        assert [comparable(r) for r in results] == clean
        after = {ray.get(s.actor.ready.remote())["node_id"] for s in checker._slots}
        assert victim.node_id not in after and len(checker._slots) == 2  # moved to the free node
        assert_no_lean_left()
    finally:
        if checker is not None:
            checker.close()
        ray.shutdown()
        cluster.shutdown()
    assert_no_lean_left()


def test_joining_a_cluster_started_with_ray_start(tmp_path, kernel):
    """`ray start` on 127.0.0.2 (two nodes), then what the CLI does: connect, describe, check."""
    if ray.is_initialized():
        ray.shutdown()
    port = 20000 + os.getpid() % 10000
    address = f"127.0.0.2:{port}"
    common = ["--node-ip-address=127.0.0.2", "--num-cpus=1", "--disable-usage-stats"]
    sessions: list[int] = []
    try:
        sessions.append(ray_start("--head", f"--port={port}", "--include-dashboard=false", *common))
        sessions.append(ray_start(f"--address={address}", *common))
        wait_for(lambda: raycluster.describe(address).nodes == 2, 60, "the second node to join")
        info = raycluster.describe(address)
        assert (info.nodes, info.cpus, info.gpus) == (2, 2.0, 0.0)
        row = raycluster.doctor_row(address)
        assert row["status"] == "ok" and "2 nodes, 2 CPUs, 0 GPUs" in row["detail"]
        assert not ray.is_initialized()  # describe() leaves no connection behind
        with get_checker("ray", inner="kernel", address=address, runtime_env=ACTOR_ENV, **SMALL) as checker:
            assert checker.actors == 2  # one per node: what fits, node by node
            files = [MINI_PRELUDE + GOOD_PROOF, MINI_PRELUDE + WRONG_PROOF]
            assert [comparable(r) for r in checker.check_many(files)] == [comparable(kernel.check(f)) for f in files]
        assert not ray.is_initialized()  # the checker joined the cluster, so it left it
    finally:
        if ray.is_initialized():
            ray.shutdown()
        stop_sessions(sessions)
    assert_no_lean_left()


def ray_start(*args: str) -> int:
    """Run `ray start` in a session of its own; returns the session id, which every process of
    that node keeps (so teardown can stop exactly them)."""
    ray_cli = str(Path(sys.executable).with_name("ray"))
    proc = subprocess.Popen([ray_cli, "start", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "RAY_AUTH_MODE": "disabled"}, start_new_session=True)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, f"ray start failed: {err.decode()[-2000:]}"
    return proc.pid


def stop_sessions(sessions: list[int]) -> None:
    """SIGKILL every process in these sessions: what `ray stop --force` does for the nodes we
    started, without touching the Ray clusters of other jobs on this machine."""
    def members() -> list[int]:
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # it ended while we looked
            if int(fields[3]) in sessions and fields[0] != "Z":
                found.append(int(pid))
        return found

    for pid in members():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue  # ended on its own meanwhile
    wait_for(lambda: not members(), 15, "the ray start nodes to stop")


def test_an_unreachable_address_is_one_clear_sentence():
    from solve_in_lean.errors import UnavailableError

    if ray.is_initialized():
        ray.shutdown()
    with pytest.raises(UnavailableError, match="could not reach a Ray cluster at 127.0.0.2:1"):
        raycluster.connect("127.0.0.2:1")
    row = raycluster.doctor_row("127.0.0.2:1")
    assert row["status"] == "missing" and "ray start --head" in row["fix"]


# ---- the Ray Data pipeline: request building here, the real run on GPUs -----------------------

def test_sample_rows_give_each_sample_its_own_placement_free_seed():
    from solve_in_lean.models import SamplingParams
    from solve_in_lean.models.base import sample_seed
    from solve_in_lean.models.ray_backend import from_output, sample_rows, to_request

    params = SamplingParams(temperature=0.8, top_p=0.95, max_new_tokens=64, stop=("```",), seed=3)
    rows = [{"id": "a", "prompt": "theorem a"}, {"id": "b", "prompt": [{"role": "user", "content": "b"}]}]
    samples = sample_rows(rows, 3, params)
    assert [(r["id"], r["sample_index"]) for r in samples] == [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1), ("b", 2)]
    seeds = [r["sampling_params"]["seed"] for r in samples]
    assert seeds == [sample_seed(3, r["prompt"], r["sample_index"]) for r in samples]
    assert len(set(seeds)) == 6
    # a row's seeds depend on the row, not on what else is in the dataset or where it sits
    assert sample_rows(rows[::-1], 3, params)[:3] == samples[3:]
    assert samples[0]["sampling_params"] == {"n": 1, "temperature": 0.8, "top_p": 0.95, "max_tokens": 64,
                                             "stop": ["```"], "seed": seeds[0]}
    text_req, chat_req = to_request(samples[0]), to_request(samples[3])
    assert text_req["prompt"] == "theorem a" and "messages" not in text_req
    assert chat_req["messages"] == [{"role": "user", "content": "b"}] and "prompt" not in chat_req
    out = from_output({**text_req, "generated_text": "by simp", "num_generated_tokens": 64, "num_input_tokens": 5,
                       "generated_tokens": [1] * 64})
    assert out["completion"]["finish_reason"] == "length" and out["completion"]["text"] == "by simp"
    assert out["id"] == "a" and "generated_tokens" not in out
    empty = from_output({**text_req, "generated_text": "  ", "num_generated_tokens": 2, "num_input_tokens": 5})
    assert empty["completion"]["finish_reason"] == "empty" and empty["completion"]["error"]


def test_lean_check_stage_checks_rows_with_the_real_kernel(kernel):
    from solve_in_lean.lean.ray_backend import LeanCheckStage

    stage = LeanCheckStage("kernel", {"timeout_s": 60})
    good = stage({"id": 1, "code": GOOD_PROOF, "header": MINI_PRELUDE})
    bad = stage({"id": 2, "code": MINI_PRELUDE + WRONG_PROOF})
    assert good["id"] == 1 and good["check"]["status"] == "ok"
    assert bad["check"]["status"] == "error" and bad["check"]["messages"]


@pytest.mark.cuda
def test_ray_data_pipeline_streams_generations_into_lean_checks(kernel):
    pytest.importorskip("vllm", reason="needs vLLM and a CUDA GPU: pip install 'lean-solve[ray-llm]'")
    pytest.importorskip("ray.data.llm", reason="needs ray[llm]: pip install 'lean-solve[ray-llm]'")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU for vLLM")
    from solve_in_lean.lean.ray_backend import LeanCheckStage
    from solve_in_lean.models import SamplingParams
    from solve_in_lean.models.ray_backend import sample_rows, vllm_processor

    model = os.environ.get("LEAN_SOLVE_RAY_LLM_MODEL", "Qwen/Qwen2.5-0.5B-Instruct")
    rows = sample_rows([{"id": i, "prompt": f"Write a Lean proof #{i}"} for i in range(4)], 2,
                       SamplingParams(temperature=0.7, max_new_tokens=32, seed=1))
    ds = vllm_processor(model, chat=False)(ray.data.from_items(rows))
    ds = ds.map(lambda r: {**r, "code": r["completion"]["text"]})
    ds = ds.map(LeanCheckStage, fn_constructor_kwargs={"inner": "kernel", "options": {"timeout_s": 30}},
                concurrency=1)
    out = ds.take_all()
    assert sorted((r["id"], r["sample_index"]) for r in out) == [(i, k) for i in range(4) for k in range(2)]
    assert all(r["check"]["status"] in ("ok", "error", "invalid_input") for r in out)
