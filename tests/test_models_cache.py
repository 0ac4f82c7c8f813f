"""The SQLite generation cache (hits, misses, resume after SIGKILL, two writers at once) and the
registry that builds generators from config."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from solve_in_lean.models import (BACKENDS, DEFAULT_MODEL, ModelConfig, generator_from_config, load_generator,
                                  parse_options)
from solve_in_lean.models.base import Completion, GenerationError, Generator, SamplingParams
from solve_in_lean.models.cache import CachedGenerator, request_key
from solve_in_lean.models.scripted import ScriptedGenerator
from solve_in_lean.models.serve import OpenAIServer
from solve_in_lean.models.transformers_backend import TransformersGenerator

PROMPTS = ["The answer is", "theorem clips", [{"role": "user", "content": "How many clips?"}]]
SAMPLED = SamplingParams(n=2, temperature=1.0, max_new_tokens=6, seed=3)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def local(tiny_model_dir) -> TransformersGenerator:
    return TransformersGenerator(str(tiny_model_dir), batch_size=8)


class Counting(Generator):
    """Passes calls through to a real generator and counts the prompts it was asked for."""

    def __init__(self, inner: Generator, delay_s: float = 0.0) -> None:
        self.inner, self.delay_s = inner, delay_s
        self.backend, self.model = inner.backend, inner.model
        self.prompts = 0

    def generate(self, prompts, params):
        self.prompts += len(prompts)
        time.sleep(self.delay_s)
        return self.inner.generate(prompts, params)


def texts(results) -> list[list[str]]:
    return [[c.text for c in cs] for cs in results]


def rows(path: Path) -> list[tuple[str, int, dict]]:
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return [(k, i, json.loads(c)) for k, i, c in db.execute("SELECT key, idx, completion FROM completions")]


def count_rows(path: Path) -> int:
    """Rows written so far by another process; 0 while the file or its schema is still being made."""
    if not path.exists():
        return 0
    with closing(sqlite3.connect(path, timeout=5)) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM completions").fetchone()[0]
        except sqlite3.OperationalError as e:
            if "no such table" not in str(e):
                raise
            return 0


def test_miss_then_hit_returns_the_same_completions(local, tmp_path):
    counting = Counting(local)
    with CachedGenerator(counting, tmp_path / "c.sqlite") as cache:
        first = cache.generate(PROMPTS, SAMPLED)
        assert counting.prompts == 3 and cache.generated == 6 and cache.hits == 0
        assert not any(c.cached for cs in first for c in cs)
        second = cache.generate(PROMPTS, SAMPLED)
        assert counting.prompts == 3 and cache.hits == 6
    assert all(c.cached for cs in second for c in cs)
    assert [[c.to_dict() for c in cs] for cs in second] == [[c.to_dict() for c in cs] for cs in first]
    assert texts(first) == texts(local.generate(PROMPTS, SAMPLED))  # the cache does not change results
    assert len(rows(tmp_path / "c.sqlite")) == 6


def test_more_samples_reuse_the_stored_ones(local, tmp_path):
    counting = Counting(local)
    cache = CachedGenerator(counting, tmp_path / "c.sqlite")
    two = cache.generate(["theorem"], SAMPLED)
    four = cache.generate(["theorem"], SamplingParams(n=4, temperature=1.0, max_new_tokens=6, seed=3))
    assert texts(four)[0][:2] == texts(two)[0]
    assert [c.cached for c in four[0]] == [True, True, False, False]
    assert len(set(texts(four)[0])) == 4  # the extra samples are new draws, not copies
    three = cache.generate(["theorem"], SamplingParams(n=3, temperature=1.0, max_new_tokens=6, seed=3))
    assert texts(three)[0] == texts(four)[0][:3] and all(c.cached for c in three[0])
    assert counting.prompts == 2


def test_key_covers_backend_model_prompt_and_every_sampling_field():
    base = request_key("transformers", "m", "p", SAMPLED)
    variants = [request_key("http", "m", "p", SAMPLED), request_key("transformers", "m2", "p", SAMPLED),
                request_key("transformers", "m", "p2", SAMPLED),
                request_key("transformers", "m", [{"role": "user", "content": "p"}], SAMPLED)]
    for change in ({"temperature": 0.5}, {"top_p": 0.5}, {"max_new_tokens": 7}, {"stop": ("x",)},
                   {"seed": 4}, {"seed": None}):
        variants.append(request_key("transformers", "m", "p", SamplingParams(**{**SAMPLED.to_dict(), **change})))
    assert len({base, *variants}) == len(variants) + 1
    assert request_key("transformers", "m", "p", SamplingParams(n=5, temperature=1.0, max_new_tokens=6, seed=3)) == base
    msg = [{"role": "user", "content": "p"}]
    assert request_key("t", "m", msg, SAMPLED) == request_key("t", "m", [{"content": "p", "role": "user"}], SAMPLED)


def test_duplicate_prompts_are_generated_once(local, tmp_path):
    counting = Counting(local)
    out = CachedGenerator(counting, tmp_path / "c.sqlite").generate(["x", "y", "x"], SAMPLED)
    assert counting.prompts == 2 and texts(out)[0] == texts(out)[2]


def test_fully_cached_run_never_builds_the_model(local, tmp_path):
    CachedGenerator(local, tmp_path / "c.sqlite").generate(PROMPTS, SAMPLED)

    def must_not_load() -> Generator:
        raise AssertionError("the model was loaded although everything was cached")

    lazy = CachedGenerator(must_not_load, tmp_path / "c.sqlite", backend=local.backend, model=local.model)
    assert texts(lazy.generate(PROMPTS, SAMPLED)) == texts(local.generate(PROMPTS, SAMPLED))
    with pytest.raises(AssertionError, match="was loaded"):
        lazy.generate(["not cached yet"], SAMPLED)


def test_replay_mode_refuses_to_generate(local, tmp_path):
    CachedGenerator(local, tmp_path / "c.sqlite").generate(PROMPTS[:1], SAMPLED)
    replay = CachedGenerator(local, tmp_path / "c.sqlite", replay=True)
    assert len(replay.generate(PROMPTS[:1], SAMPLED)[0]) == 2
    with pytest.raises(GenerationError, match="2 of 3 prompts are not in the cache"):
        replay.generate(PROMPTS, SAMPLED)


class ErrorsFirst(Generator):
    """Scripted (not a model): an error completion on the first call, text afterwards."""

    backend, model = "scripted", "errors-first"

    def __init__(self) -> None:
        self.calls = 0

    def generate(self, prompts, params):
        self.calls += 1
        if self.calls == 1:
            return [[Completion("", "error", error="server hiccup")] * params.n for _ in prompts]
        return [[Completion("fine")] * params.n for _ in prompts]


def test_error_completions_are_returned_but_not_stored(tmp_path):
    cache = CachedGenerator(ErrorsFirst(), tmp_path / "c.sqlite")
    assert cache.generate(["q"], SamplingParams())[0][0].finish_reason == "error"
    assert len(cache) == 0
    assert cache.generate(["q"], SamplingParams())[0][0].text == "fine"
    assert cache.generate(["q"], SamplingParams())[0][0].cached


def test_a_backend_returning_the_wrong_shape_is_an_error(tmp_path):
    class Short(ScriptedGenerator):
        def generate(self, prompts, params):
            return super().generate(prompts, params)[:-1]

    with pytest.raises(GenerationError, match="returned 1 results for 2 prompts"):
        CachedGenerator(Short(["a"]), tmp_path / "c.sqlite").generate(["p", "q"], SamplingParams())


RESUME_CHILD = """
import sys
from solve_in_lean.models.base import SamplingParams
from solve_in_lean.models.cache import CachedGenerator
from solve_in_lean.models.http_backend import HttpGenerator
url, path, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
prompts = [f"problem {i}: the answer is" for i in range(count)]
gen = CachedGenerator(HttpGenerator("tiny", base_url=url, concurrency=1), path, chunk_size=1)
gen.generate(prompts, SamplingParams(n=2, temperature=1.0, max_new_tokens=6, seed=3))
print("finished", flush=True)
"""


def test_resume_after_sigkill_only_generates_the_rest(local, tmp_path):
    count, path = 30, tmp_path / "c.sqlite"
    slow = Counting(local, delay_s=0.05)  # the real tiny model, served slowly enough to be killed mid-run
    with OpenAIServer(slow).start() as server:
        child = subprocess.Popen([sys.executable, "-c", RESUME_CHILD, server.url, str(path), str(count)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and child.poll() is None:
            if count_rows(path) >= 6:
                break
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL, f"child ended on its own: {out} {err}"
        kept = rows(path)
        assert 6 <= len(kept) < 2 * count and len(kept) % 2 == 0  # whole chunks only

        served_before = slow.prompts
        from solve_in_lean.models.http_backend import HttpGenerator

        prompts = [f"problem {i}: the answer is" for i in range(count)]
        params = SamplingParams(n=2, temperature=1.0, max_new_tokens=6, seed=3)
        with CachedGenerator(HttpGenerator("tiny", base_url=server.url), path) as resumed:
            results = resumed.generate(prompts, params)
            assert resumed.hits == len(kept) and resumed.generated == 2 * count - len(kept)
        assert slow.prompts - served_before == count - len(kept) // 2
    assert texts(results) == texts(local.generate(prompts, params))  # as if never interrupted
    assert len(rows(path)) == 2 * count


WRITER_CHILD = """
import sys, time
from pathlib import Path
from solve_in_lean.models.base import SamplingParams
from solve_in_lean.models.cache import CachedGenerator
from solve_in_lean.models.scripted import ScriptedGenerator
path, first, last, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
gen = CachedGenerator(ScriptedGenerator(lambda p, i: f"{p}#{i}"), path, chunk_size=1)
Path(go.parent / f"ready-{first}").touch()
while not go.exists():
    time.sleep(0.001)
start = time.time()
gen.generate([f"p{i}" for i in range(first, last)], SamplingParams(n=2))
print(start, time.time())
"""


def test_two_processes_write_one_cache_at_once(tmp_path):
    path, go = tmp_path / "shared.sqlite", tmp_path / "go"
    children = [subprocess.Popen([sys.executable, "-c", WRITER_CHILD, str(path), str(a), str(b), str(go)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for a, b in ((0, 300), (150, 450))]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{a}").exists() for a in (0, 150)) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()  # both start writing together: 150 prompts overlap
    spans = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        spans.append([float(t) for t in out.split()])
    (a0, a1), (b0, b1) = spans
    assert a0 < b1 and b0 < a1, f"the writers did not overlap in time: {spans}"
    stored = rows(path)
    assert len(stored) == 2 * 450
    replay = CachedGenerator(ScriptedGenerator([]), path, replay=True)
    out = replay.generate([f"p{i}" for i in range(450)], SamplingParams(n=2))
    assert texts(out) == [[f"p{i}#0", f"p{i}#1"] for i in range(450)]


# --- registry and config ---------------------------------------------------------------------

def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown generation backend 'llamafile'; known backends: "
                                         "transformers, vllm, http, ray"):
        load_generator("llamafile", "m")
    assert set(BACKENDS) == {"transformers", "vllm", "http", "ray"}


def test_importing_the_models_package_imports_no_torch():
    code = ("import sys, solve_in_lean.models, solve_in_lean.models.cache, solve_in_lean.prompts;"
            "assert not {'torch', 'transformers', 'vllm'} & set(sys.modules), 'heavy import'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_model_config_round_trips_and_overrides(tmp_path):
    cfg_file = tmp_path / "run.toml"
    cfg_file.write_text('[model]\nbackend = "http"\nmodel = "served"\ncache = "c.sqlite"\ntemperature = 0.7\n'
                        'n = 4\nstop = ["\\n\\n"]\n[model.options]\nbase_url = "http://127.0.0.1:9/v1"\n')
    cfg = ModelConfig.from_file(cfg_file)
    assert (cfg.backend, cfg.model, cfg.sampling.n, cfg.sampling.stop) == ("http", "served", 4, ("\n\n",))
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    flags = cfg.with_overrides(temperature=None, seed=9, options=parse_options(["timeout_s=5", "endpoint=chat"]))
    assert flags.sampling.temperature == 0.7 and flags.sampling.seed == 9
    assert flags.options == {"base_url": "http://127.0.0.1:9/v1", "timeout_s": 5, "endpoint": "chat"}
    assert flags.sampling == SamplingParams(n=4, temperature=0.7, stop=("\n\n",), seed=9)
    assert ModelConfig().model == DEFAULT_MODEL
    with pytest.raises(ValueError, match=r"unknown model config keys \['temprature'\]"):
        ModelConfig.from_dict({"temprature": 1.0})
    with pytest.raises(ValueError, match="known backends"):
        ModelConfig(backend="onnx")
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        ModelConfig.from_dict({"temperature": -1})
    with pytest.raises(ValueError, match="expected key=value"):
        parse_options(["novalue"])


def test_generator_from_config_builds_and_caches(tiny_model_dir, tmp_path):
    plain = generator_from_config(ModelConfig(model=str(tiny_model_dir)))
    assert isinstance(plain, TransformersGenerator)
    cfg = ModelConfig(model=str(tiny_model_dir), cache=str(tmp_path / "c.sqlite"), sampling=SamplingParams(max_new_tokens=4))
    cached = generator_from_config(cfg)
    assert isinstance(cached, CachedGenerator) and cached._inner is None  # nothing loaded yet
    [[c]] = cached.generate(["x"], cfg.sampling)
    assert c.text == plain.generate(["x"], cfg.sampling)[0][0].text
    assert isinstance(cached.inner, TransformersGenerator) and len(cached) == 1
