"""The default executor: a process pool on this machine (``--workers N``, default all cores)."""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


_PR_SET_PDEATHSIG = 1  # linux/prctl.h
WATCH_SECONDS = 0.5  # how often a worker checks that the driver that started it is alive


def _die_with_parent() -> None:
    """Linux: the kernel sends SIGKILL to this process when its parent (the forkserver) ends.
    Outputs are written atomically, so a killed task leaves only temporaries, which the next run
    clears."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (killed, not yet reaped by its parent)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def _watch_driver(driver: int, parent: int) -> None:
    """End this worker once the driver process is gone or this process was re-parented (its
    parent died). A driver killed with SIGKILL cannot stop its workers, and the forkserver lives
    as long as a worker does (each holds its keep-alive pipe), so workers must notice themselves."""
    while True:
        time.sleep(WATCH_SECONDS)
        if not _alive(driver) or os.getppid() != parent:
            os._exit(1)


def _init_worker(threads: int, env: dict[str, str], driver: int | None = None) -> None:
    parent = os.getppid()
    _die_with_parent()
    if driver is not None:
        threading.Thread(target=_watch_driver, args=(driver, parent), name="corpusforge-watch-driver",
                         daemon=True).start()
    # Workers fork from a forkserver started by the first run of this process, so they inherit the
    # environment of that moment: give them the caller's environment of now (credentials, endpoints
    # set since then), as a fresh process would have.
    os.environ.clear()
    os.environ.update(env)
    # One process per core: the Rust thread pools inside tokenizers/pyarrow get the rest, so
    # N processes x N threads never oversubscribes the machine.
    os.environ["RAYON_NUM_THREADS"] = str(threads)
    os.environ["TOKENIZERS_PARALLELISM"] = "true"
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))


class LocalExecutor:
    """Runs ``fn(payload)`` for each payload; in this process when one worker (or one task) suffices."""

    def __init__(self, workers: int | None = None):
        self.workers = workers or default_workers()
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            method = "forkserver" if sys.platform.startswith("linux") else "spawn"
            ctx = mp.get_context(method)
            if method == "forkserver":
                # Workers fork from a server that has already imported the pipeline (numpy, pyarrow,
                # tokenizers): a worker then starts in milliseconds instead of re-importing.
                ctx.set_forkserver_preload(["corpusforge.pipeline"])
            threads = max(1, default_workers() // self.workers)
            self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                             initargs=(threads, dict(os.environ), os.getpid()))
        return self._pool

    def map_unordered(self, fn: Callable[[Any], Any], payloads: list[Any]) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, result)`` as tasks finish; an exception in a task is raised here."""
        if self.workers == 1 or len(payloads) <= 1:
            for i, p in enumerate(payloads):
                yield i, fn(p)
            return
        pool = self._get_pool()
        pending: dict[Future[Any], int] = {}
        it = iter(enumerate(payloads))
        # Keep a bounded number of tasks in flight so a huge plan does not queue every payload.
        for i, p in it:
            pending[pool.submit(fn, p)] = i
            if len(pending) >= 2 * self.workers:
                break
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                i = pending.pop(fut)
                yield i, fut.result()
                nxt = next(it, None)
                if nxt is not None:
                    pending[pool.submit(fn, nxt[1])] = nxt[0]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
