"""`lean-solve check` through the check server (solve_in_lean/check_server) against bare Lean on
the same prelude files, measured in one run, interleaved, medians (bench/check_overhead.py's
files and style).

    python bench/check_server.py [--files 100] [--workers 2] [--cli-runs 20] [--snapshot]

Starts its own server in a private runtime directory (XDG_RUNTIME_DIR) and stops it at the end.
Before every timed run (bare Lean too) it waits until the server's pool of Leans started ahead
is full and settled, so a refill never overlaps a measurement. Prints and writes to
bench/results/check_server.json:
  server ratio     `lean-solve check FILE` with the server running, median / bare
                   `lean --json FILE`, median                                        target <= 1.5
  in-process ratio the same with --no-server (bench/check_overhead.py's CLI ratio)
  floor ratio      (Python start-up + bare Lean) / bare Lean: the floor of any CLI that checks
                   in its own process
  batch ratio      `lean-solve check` of all files in one call on N workers through the server /
                   bare Lean run serially on them
  CPU per check    client plus server (its own and its Leans', from /proc, averaged over all
                   server runs: the kernel counts CPU in clock ticks) / bare Lean's
Every server run is checked to have been served (the server's request count): a check that
fell back to the client's process would make the numbers meaningless. --snapshot runs a copy
of the package (PYTHONPATH), for machines where someone edits the checkout meanwhile (a server
answers only while its code is unchanged).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_overhead import cli_command, import_times, make_file, timed  # noqa: E402

from solve_in_lean.check_server.client import request  # noqa: E402
from solve_in_lean.lean.kernel import driver_command, find_library  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.5
SETTLE_S = 0.3
"""After the pool is full: a Lean started last finishes its own start-up (about 40 ms) and waits."""


def server_cpu(pid: int) -> float:
    """CPU seconds of the server and of its children it has reaped (its Leans)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cli-runs", type=int, default=20, help="single-file runs of each kind, interleaved")
    ap.add_argument("--snapshot", action="store_true", help="run a copy of the package (see above)")
    args = ap.parse_args()

    lean = [*driver_command(find_library()), "--json"]
    cli = [*cli_command(), "check", "--backend", "kernel"]
    with tempfile.TemporaryDirectory(prefix="ls-bench-", dir="/tmp") as tmp:
        runtime = Path(tmp) / "rt"
        runtime.mkdir(mode=0o700)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "LEAN_SOLVE_CHECK_SERVER")}
        env.update(PYTHONPYCACHEPREFIX=str(Path(tmp) / "pycache"), NO_COLOR="1", XDG_RUNTIME_DIR=str(runtime))
        if args.snapshot:
            for package in ("solve_in_lean", "autoformalize"):
                shutil.copytree(ROOT / package, Path(tmp) / "site" / package, symlinks=True,
                                ignore=shutil.ignore_patterns("__pycache__"))
            env["PYTHONPATH"] = str(Path(tmp) / "site")
        socket = subprocess.run([sys.executable, "-c", "from solve_in_lean.check_server.client import socket_path; "
                                 "print(socket_path())"], capture_output=True, text=True, env=env, cwd=tmp,
                                check=True).stdout.strip()  # the CLI's, keyed by the package it runs
        paths = []
        for i in range(args.files):
            p = Path(tmp) / f"f{i}.lean"
            p.write_text(make_file(i))
            paths.append(str(p))

        def run(cmd: list[str]) -> subprocess.CompletedProcess:
            return subprocess.run(cmd, capture_output=True, check=False, env=env, cwd=tmp)

        def status() -> dict:
            reply = request("status", socket)
            if not isinstance(reply, dict):
                sys.exit(f"the check server stopped answering ({reply}); see its log in {runtime}")
            return reply

        def settled() -> None:
            while not all(h["in_use"] == 0 and h["leans_ready"] == h["pool_size"] for h in status()["checkers"]):
                time.sleep(0.01)
            time.sleep(SETTLE_S)

        started = run([*cli_command(), "server", "start", "--idle", "3600"])
        try:
            if started.returncode != 0:
                sys.exit(f"the check server did not start: {started.stdout.decode()}{started.stderr.decode()}")
            pid = status()["pid"]
            run([*lean, paths[0]])
            warm = run([*cli, paths[1]])  # a true claim (every tenth file, from f0, is false)
            if warm.returncode != 0:
                sys.exit(f"lean-solve check failed on a good file: {warm.stdout.decode()}{warm.stderr.decode()}")
            run([*cli, "--no-server", paths[1]])
            served_before = status()["requests"]
            bare_t, server_t, local_t, python_t = [], [], [], []
            bare_cpu, client_cpu, local_cpu = [], [], []
            server_cpu_total = 0.0
            for i in range(args.cli_runs):
                p = paths[i % len(paths)]
                settled()
                bare_t.append(timed(lambda: run([*lean, p]), bare_cpu))
                settled()
                before = server_cpu(pid)
                server_t.append(timed(lambda: run([*cli, p]), client_cpu))
                settled()  # the CPU of the Lean it used is counted once the server reaped it
                server_cpu_total += server_cpu(pid) - before
                local_t.append(timed(lambda: run([*cli, "--no-server", p]), local_cpu))
                python_t.append(timed(lambda: run([sys.executable, "-c", "pass"])))
            served = status()["requests"] - served_before
            if served != args.cli_runs:
                sys.exit(f"only {served} of {args.cli_runs} checks were served by the server: numbers void")

            bare_serial = timed(lambda: [run([*lean, p]) for p in paths])
            batch_cmd = [*cli, *paths, "--workers", str(args.workers)]
            run(batch_cmd)  # builds and warms that checker (its key has workers=N)
            settled()
            batch_t = timed(lambda: run(batch_cmd))
            batch = run([*batch_cmd, "--json"])
            outcomes = [json.loads(line)["outcome"] for line in batch.stdout.decode().splitlines()]
            if status()["requests"] - served_before != args.cli_runs + 3:
                sys.exit("a batch was not served by the server: numbers void")
            imports = import_times([*cli, paths[1]], env)
        finally:
            run([*cli_command(), "server", "stop"])

    bare_median = statistics.median(bare_t)
    result = {
        "files": args.files,
        "workers": args.workers,
        "cli_runs": args.cli_runs,
        "snapshot": args.snapshot,
        "cli": " ".join(cli),
        "bare_lean_median_s": bare_median,
        "server_cli_median_s": statistics.median(server_t),
        "in_process_cli_median_s": statistics.median(local_t),
        "python_startup_median_s": statistics.median(python_t),
        "server_ratio": statistics.median(server_t) / bare_median,
        "in_process_ratio": statistics.median(local_t) / bare_median,
        "floor_ratio": (statistics.median(python_t) + bare_median) / bare_median,
        "bare_serial_total_s": bare_serial,
        "server_batch_total_s": batch_t,
        "batch_ratio": batch_t / bare_serial,
        "batch_outcomes": {o: outcomes.count(o) for o in sorted(set(outcomes))},
        "cpu_per_check_s": {"bare": statistics.mean(bare_cpu), "server_client": statistics.mean(client_cpu),
                            "server_side": server_cpu_total / args.cli_runs, "in_process": statistics.mean(local_cpu)},
        "client_imports_s": {k: imports[k] for k in ("total", "solve_in_lean.cli", "solve_in_lean.check_server.client")
                             if k in imports},
        "load_average": os.getloadavg(),
    }
    cpu = result["cpu_per_check_s"]
    result["server_cpu_ratio"] = (cpu["server_client"] + cpu["server_side"]) / cpu["bare"]
    result["in_process_cpu_ratio"] = cpu["in_process"] / cpu["bare"]
    rows = [
        (f"bare Lean, one file (median of {len(bare_t)})", f"{bare_median * 1000:.1f} ms"),
        ("lean-solve check, server running", f"{result['server_cli_median_s'] * 1000:.1f} ms"),
        ("lean-solve check --no-server", f"{result['in_process_cli_median_s'] * 1000:.1f} ms"),
        ("Python start-up (python -c pass)", f"{result['python_startup_median_s'] * 1000:.1f} ms"),
        ("client imports (-X importtime: total, cli, client)",
         " / ".join(f"{v * 1000:.1f}" for v in result["client_imports_s"].values()) + " ms"),
        ("ratios: server / in process / floor",
         f"{result['server_ratio']:.3f} / {result['in_process_ratio']:.3f} / {result['floor_ratio']:.3f}"),
        ("CPU per check over bare Lean's: server / in process",
         f"{result['server_cpu_ratio']:.3f} / {result['in_process_cpu_ratio']:.3f}"),
        (f"bare Lean, {args.files} files serially", f"{bare_serial:.2f} s"),
        (f"server, {args.files} files, {args.workers} workers", f"{batch_t:.2f} s {result['batch_outcomes']}"),
        ("batch ratio (server)", f"{result['batch_ratio']:.3f}"),
        ("load average (1, 5, 15 min) at the end", " ".join(f"{x:.2f}" for x in result["load_average"])),
    ]
    for label, value in rows:
        print(f"{label:52s} {value}")
    ok = result["server_ratio"] <= TARGET
    print(f"{'server_ratio':52s} {result['server_ratio']:.3f}  (target <= {TARGET}: {'ok' if ok else 'MISSED'})")
    result["missed"] = [] if ok else ["server_ratio"]
    out = Path(__file__).parent / "results" / "check_server.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
