"""Run a stage's tasks as Ray tasks (``--executor ray``), on a cluster or a local Ray instance.

Each Ray task calls the same function the local executor calls (``pipeline.run_task``); the work
of a task goes through files under the output folder, so only the task's small payload and its
statistics pass through Ray's object store. The recipe and plan, identical for every task of a
stage, are put there once per stage instead of once per task.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

from corpusforge.errors import CorpusforgeError
from corpusforge.executors.local import default_workers

# Payload entries shared by every task of a stage (see runner._task_stage).
_SHARED = ("recipe", "plan", "output", "fingerprint", "remote")


def _call(fn: Callable[[Any], Any], shared: dict[str, Any], own: Any, cwd: str) -> Any:
    # Relative paths in a recipe (a model path, index_dir) mean what they mean to the driver,
    # as with the local pool, wherever the driver's folder exists on the node.
    if os.path.isdir(cwd):
        os.chdir(cwd)
    return fn({**shared, **own}) if shared else fn(own)


def _check_reachable(address: str) -> None:
    """Fail at once on a ``host:port`` nobody listens on (Ray itself retries for minutes)."""
    if "://" in address or address in ("auto", "local"):
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise CorpusforgeError(f"executor 'ray': address {address!r} is not auto, ray://HOST:PORT or HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as exc:
        raise CorpusforgeError(f"executor 'ray': no Ray cluster answers at {address} ({exc}); start one with "
                               f"'ray start --head --port {port}'") from None


class RayExecutor:
    """Runs ``fn(payload)`` for each payload as a Ray task: one CPU each, retried if its worker dies.

    ``address`` is passed to ``ray.init`` (``auto``, ``ray://host:10001``, ``host:port``; default
    ``$RAY_ADDRESS``); without one, a Ray instance with ``workers`` CPUs (default: all cores) is
    started for this run and stopped at ``close``. A program that called ``ray.init`` itself
    keeps its connection (and its runtime environment). At most ``max_in_flight`` tasks (default twice the cluster's CPUs) are
    submitted at a time, so a plan of a million tasks does not queue a million payloads.
    """

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        max_retries: int = 3,
        max_in_flight: int | None = None,
    ):
        try:
            import ray
        except ImportError:
            raise CorpusforgeError("executor 'ray' needs Ray: pip install 'corpusforge[ray]'") from None
        self._ray = ray
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        # One CPU per task: the Rust thread pools of tokenizers/pyarrow in a task use one thread.
        runtime_env = {"env_vars": {"RAYON_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "true",
                                    "OMP_NUM_THREADS": "1"}}
        address = address or os.environ.get("RAY_ADDRESS") or None
        self._owned = not ray.is_initialized()
        if self._owned:
            kwargs: dict[str, Any] = {"runtime_env": runtime_env, "logging_level": logging.WARNING,
                                      "configure_logging": True, "log_to_driver": True}
            try:
                if address:
                    _check_reachable(address)
                    ray.init(address=address, **kwargs)
                else:
                    ray.init(num_cpus=workers or default_workers(), include_dashboard=False, **kwargs)
            except ConnectionError as exc:
                raise CorpusforgeError(f"executor 'ray': cannot connect to a Ray cluster at {address!r} "
                                       f"({exc}); start one with 'ray start --head' or leave the address out "
                                       "for a local instance") from None
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.max_in_flight = max_in_flight or 2 * self.workers
        self._task = ray.remote(_call).options(num_cpus=1, max_retries=max_retries, retry_exceptions=False,
                                                name="corpusforge_task")

    def map_unordered(self, fn: Callable[[Any], Any], payloads: list[Any]) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, result)`` as tasks finish; an exception in a task is raised here."""
        ray = self._ray
        if not payloads:
            return
        first = payloads[0]
        shared = {k: first[k] for k in _SHARED if k in first} if isinstance(first, dict) else {}
        shared_ref = ray.put(shared)
        pending: dict[Any, int] = {}
        it = iter(enumerate(payloads))

        cwd = os.getcwd()

        def submit(i: int, p: Any) -> None:
            if shared and isinstance(p, dict) and all(p.get(k) is v or p.get(k) == v for k, v in shared.items()):
                own = {k: v for k, v in p.items() if k not in shared}
                pending[self._task.remote(fn, shared_ref, own, cwd)] = i
            else:  # not one of this stage's payloads: sent whole
                pending[self._task.remote(fn, {}, p, cwd)] = i

        for i, p in it:
            submit(i, p)
            if len(pending) >= self.max_in_flight:
                break
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    i = pending.pop(ref)
                    yield i, self._result(ref)
                    nxt = next(it, None)
                    if nxt is not None:
                        submit(*nxt)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def _result(self, ref: Any) -> Any:
        ray = self._ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else None
            if cause is not None:
                raise cause from None
            raise
        except ray.exceptions.WorkerCrashedError as exc:
            raise CorpusforgeError(f"a Ray task's worker died more often than max_retries allows: {exc}") from None

    def close(self) -> None:
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()
