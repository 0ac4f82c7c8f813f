"""What Ray costs when it is not needed: the `ray` backend (kernel actors on a private one-machine
cluster) against local `check_many` (kernel), on the same prelude files and the same cores.

    python bench/ray_overhead.py [--files 100] [--workers 2] [--rounds 3]

Prints, and writes to bench/results/ray_overhead.json:
  batch ratio        Ray check_many over all files / local check_many, both on N workers
                     (N actors of 1 CPU, N threads), median of interleaved rounds   target <= 1.15
  dispatch overhead  per check, one at a time: Ray minus local, median, in ms
  round trip         an empty actor call, median, in ms (Ray's floor)
Verdicts must agree file by file, or the run fails.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from check_overhead import make_file

from solve_in_lean import raycluster
from solve_in_lean.lean import CheckRequest, get_checker

TARGET = 1.15


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def comparable(result) -> dict:
    return {k: v for k, v in result.to_dict().items() if k not in ("elapsed_s", "backend")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private throwaway cluster needs no token
    raycluster.connect(num_cpus=args.workers)
    requests = [CheckRequest(make_file(i)) for i in range(args.files)]
    local = get_checker("kernel", timeout_s=60)
    remote = get_checker("ray", inner="kernel", actors=args.workers, timeout_s=60, actor_memory_mb=1024)
    try:
        expected = [comparable(r) for r in local.check_many(requests, workers=args.workers)]  # also warms up
        if [comparable(r) for r in remote.check_many(requests)] != expected:
            raise SystemExit("the ray backend gave different verdicts from the kernel backend")

        local_t, ray_t = [], []
        for _ in range(args.rounds):  # interleaved, so machine noise hits both alike
            local_t.append(timed(lambda: local.check_many(requests, workers=args.workers)))
            ray_t.append(timed(lambda: remote.check_many(requests)))
        ratio = statistics.median(ray_t) / statistics.median(local_t)

        one_local, one_ray = [], []
        for r in requests:
            one_local.append(timed(lambda: local.check(r.code)))
            one_ray.append(timed(lambda: remote.check(r.code)))  # one at a time: one actor busy
        dispatch_ms = (statistics.median(one_ray) - statistics.median(one_local)) * 1000

        import ray

        actor = remote._slots[0].actor
        trips = [timed(lambda: ray.get(actor.ready.remote())) for _ in range(200)]
        round_trip_ms = statistics.median(trips) * 1000
        verdicts = [e["status"] for e in expected]
    finally:
        remote.close()
        raycluster.shutdown()

    result = {
        "files": args.files,
        "workers": args.workers,
        "rounds": args.rounds,
        "local_check_many_s": local_t,
        "ray_check_many_s": ray_t,
        "batch_ratio": ratio,
        "local_check_median_ms": statistics.median(one_local) * 1000,
        "ray_check_median_ms": statistics.median(one_ray) * 1000,
        "dispatch_overhead_ms": dispatch_ms,
        "actor_round_trip_ms": round_trip_ms,
        "verdicts": {s: verdicts.count(s) for s in sorted(set(verdicts))},
    }
    print(f"local check_many, {args.workers} workers (median): {statistics.median(local_t):7.2f} s")
    print(f"ray check_many, {args.workers} actors (median):    {statistics.median(ray_t):7.2f} s")
    print(f"batch ratio (target <= {TARGET}):            {ratio:7.3f} {'ok' if ratio <= TARGET else 'MISSED'}")
    print(f"one check, local (median):               {result['local_check_median_ms']:7.1f} ms")
    print(f"one check, ray (median):                 {result['ray_check_median_ms']:7.1f} ms")
    print(f"dispatch overhead per check:             {dispatch_ms:7.1f} ms")
    print(f"empty actor call (median):               {round_trip_ms:7.2f} ms")
    print(f"verdicts: {result['verdicts']}")
    out = Path(__file__).parent / "results" / "ray_overhead.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
