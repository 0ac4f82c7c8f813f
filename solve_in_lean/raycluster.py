"""Joining a Ray cluster (or starting a one-machine one) and describing it.

The one place that calls `ray.init`, so every command that takes `--ray [ADDRESS]` (or reads
`[ray] address`) connects the same way and fails with the same sentence. Ray is imported only
here and in the `ray` backends, and only when asked for: without the `ray` extra nothing else
notices it is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from solve_in_lean.errors import UnavailableError

INSTALL_HINT = "install it with `pip install 'lean-solve[ray]'`"
START_HINT = "start one with `ray start --head` (then pass its address, or `auto` on that machine)"


def import_ray() -> Any:
    """The `ray` module, or UnavailableError saying how to install it."""
    try:
        import ray
    except ImportError as e:
        raise UnavailableError(f"Ray is not installed ({e}); {INSTALL_HINT}") from None
    return ray


@dataclass(frozen=True)
class ClusterInfo:
    """What a cluster offers, summed over its live nodes."""

    address: str
    nodes: int
    cpus: float
    gpus: float
    memory_gb: float

    def summary(self) -> str:
        return (f"{self.nodes} node{'s' * (self.nodes != 1)}, {self.cpus:g} CPUs, {self.gpus:g} GPUs, "
                f"{self.memory_gb:.1f} GB for tasks at {self.address}")


def connect(address: str | None = None, *, num_cpus: int | None = None, num_gpus: int | None = None,
            **init_options: Any) -> bool:
    """Make sure this process talks to a Ray cluster; True if this call started the connection
    (so the caller owns it and shuts it down), False if one was already open.

    `address` None starts a private one-machine cluster (`num_cpus`/`num_gpus` size it);
    "auto" joins the cluster `ray start` runs on this machine; "HOST:PORT" joins that one.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                               "logging_level": "WARNING", **init_options}
    if address:
        _probe(address)
        options["address"] = address
    else:
        # A private cluster must not join another one by accident: without "local", ray.init
        # joins a cluster named by RAY_ADDRESS or any it finds running on this machine.
        options["address"] = "local"
        options.update({k: v for k, v in (("num_cpus", num_cpus), ("num_gpus", num_gpus)) if v is not None})
        # Ray runs workers at nice 15; on a machine the cluster shares with the driver (and
        # whatever else runs there) that makes Lean in an actor lose every contest for a core:
        # measured under load, 12 ms more per check and 1.12x the batch time, against 6 ms and 1.00x.
        options.setdefault("_system_config", {"worker_niceness": 0})
    try:
        ray.init(**options)
    except ConnectionError as e:
        where = f"at {address}" if address else "on this machine"
        raise UnavailableError(f"could not reach a Ray cluster {where} ({_first_line(e)}); {START_HINT}") from None
    except ray.exceptions.AuthenticationError as e:
        raise UnavailableError(f"the Ray cluster at {address} refused this client ({_first_line(e)}); set "
                               "RAY_AUTH_TOKEN to the cluster's token (see `ray get-auth-token`)") from None
    return True


def cluster_info() -> ClusterInfo:
    """Nodes, CPUs, GPUs and task memory of the connected cluster (only live nodes count)."""
    ray = import_ray()
    if not ray.is_initialized():
        raise UnavailableError("not connected to a Ray cluster; call raycluster.connect() first")
    alive = [n for n in ray.nodes() if n.get("Alive")]
    total = {key: sum(n.get("Resources", {}).get(key, 0.0) for n in alive) for key in ("CPU", "GPU", "memory")}
    return ClusterInfo(address=ray.get_runtime_context().gcs_address, nodes=len(alive), cpus=total["CPU"],
                       gpus=total["GPU"], memory_gb=total["memory"] / 2**30)


def describe(address: str) -> ClusterInfo:
    """Connect to `address`, read the cluster's size, and disconnect again if this call connected."""
    owned = connect(address)
    try:
        return cluster_info()
    finally:
        if owned:
            shutdown()


def doctor_row(address: str) -> dict:
    """A `lean-solve doctor` row for the cluster at `address` (never raises)."""
    try:
        info = describe(address)
    except UnavailableError as e:
        return {"item": "ray cluster", "status": "missing", "detail": str(e), "fix": START_HINT}
    return {"item": "ray cluster", "status": "ok", "detail": info.summary(), "fix": ""}


def shutdown() -> None:
    """Disconnect (and stop the cluster if this process started it)."""
    ray = import_ray()
    ray.shutdown()


def _probe(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds on an address nothing listens at (ray.init would retry for minutes)."""
    import socket

    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if address == "auto" or not sep or not port.isdigit():
        return  # "auto" or an address form Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise UnavailableError(f"could not reach a Ray cluster at {address} ({e.strerror or e}); {START_HINT}") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__
