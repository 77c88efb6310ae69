"""Run a stage's tasks as Spark tasks (``--executor spark``): on ``local[N]``, a standalone cluster,
YARN or Kubernetes, wherever ``address`` (the Spark master) or ``spark-submit`` points.

A stage is one Spark job with one partition per task; each partition calls the function the local
executor calls (``pipeline.run_task``), whose work goes through files under the output folder
(shared storage or an fsspec URL), so only the task's payload and its statistics pass through
Spark. The recipe and plan, the same for every task of a stage, travel once as a broadcast. A task
whose Python worker or executor dies is retried by Spark (``spark.task.maxFailures``, from
``max_retries``); an exception raised by a task is not (it would fail the same way again) and is
raised in the driver as it is.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

from corpusforge.errors import CorpusforgeError
from corpusforge.executors.local import default_workers
from corpusforge.observe.stats import reset_peak_rss

_SHARED = ("recipe", "plan", "output", "fingerprint", "remote")  # as in executors.ray
_LOCAL = re.compile(r"^local\[(\d+|\*)\]$")


class _Failed:
    """A task's exception, carried back as a value so Spark does not retry it."""

    def __init__(self, exc: BaseException):
        try:
            import cloudpickle

            cloudpickle.dumps(exc)
            self.exc: BaseException = exc
        except Exception:  # an exception that cannot travel: its type and message do
            self.exc = CorpusforgeError(f"{type(exc).__name__}: {exc}")


def _call(fn: Callable[[Any], Any], shared: Any, cwd: str, env: dict[str, str], item: tuple[int, Any]
          ) -> tuple[int, Any]:
    os.environ.update(env)
    if os.path.isdir(cwd):  # relative paths in a recipe mean what they mean to the driver
        os.chdir(cwd)
    reset_peak_rss()
    i, own = item
    try:
        return i, fn({**shared.value, **own})
    except Exception as exc:
        return i, _Failed(exc)


class SparkExecutor:
    """Runs ``fn(payload)`` for each payload as a Spark task, one partition each.

    ``address`` is the Spark master (``local[4]``, ``spark://host:7077``, ``yarn``,
    ``k8s://https://host:443``); without one, the master ``spark-submit`` or ``$SPARK_MASTER`` set,
    else ``local[workers]`` (default: all cores). A session that the program already started is
    used as it is and left running at ``close``; one started here is stopped.
    """

    def __init__(self, address: str | None = None, workers: int | None = None, max_retries: int = 3):
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise CorpusforgeError("executor 'spark' needs PySpark: pip install 'corpusforge[spark]'") from None
        active = SparkSession.getActiveSession()
        self._owned = active is None
        if active is not None:
            self.spark = active
        else:
            master = address or os.environ.get("SPARK_MASTER") or f"local[{workers or default_workers()}]"
            if m := _LOCAL.match(master):
                # Local mode retries a task only when the master says so: local[N, attempts].
                master = f"local[{m.group(1)},{max_retries + 1}]"
            # The workers' interpreter is read from the environment when the JVM starts: this one,
            # which has corpusforge and its dependencies, unless the user chose another.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            builder = (SparkSession.builder.appName("corpusforge").master(master)
                       .config("spark.task.maxFailures", str(max_retries + 1))
                       .config("spark.ui.showConsoleProgress", "false")
                       .config("spark.python.worker.reuse", "true"))
            try:
                self.spark = builder.getOrCreate()
            except Exception as exc:
                raise CorpusforgeError(f"executor 'spark': cannot start a Spark session with master {master!r} "
                                       f"({str(exc).splitlines()[0]})") from None
            self.spark.sparkContext.setLogLevel("ERROR")
        self.workers = max(1, int(self.spark.sparkContext.defaultParallelism))

    def map_unordered(self, fn: Callable[[Any], Any], payloads: list[Any]) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, result)`` for every payload once the stage's Spark job ends; an
        exception in a task is raised here."""
        if not payloads:
            return
        sc = self.spark.sparkContext
        first = payloads[0]
        keys = [k for k in _SHARED if isinstance(first, dict) and k in first
                and all(isinstance(p, dict) and p.get(k) == first[k] for p in payloads)]
        shared = sc.broadcast({k: first[k] for k in keys})
        own = [(i, {k: v for k, v in p.items() if k not in keys} if keys else p) for i, p in enumerate(payloads)]
        # One core per task. Nothing else travels: credentials come from the executors' own
        # environment (instance roles, workload identity), never inside a task.
        env = {"RAYON_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "true"}
        cwd = os.getcwd()
        try:
            results = sc.parallelize(own, len(own)).map(lambda item: _call(fn, shared, cwd, env, item)).collect()
        except Exception as exc:  # the job failed: a task died more often than maxFailures allows
            lines = [ln for ln in str(exc).splitlines() if ln.strip()]
            reason = next((ln.strip() for ln in lines if "Error" in ln or "exited" in ln), lines[0] if lines else "")
            raise CorpusforgeError(f"executor 'spark': the stage's job failed ({reason[:300]})") from None
        finally:
            shared.unpersist()
        for i, result in results:
            if isinstance(result, _Failed):
                raise result.exc
            yield i, result

    def close(self) -> None:
        if self._owned:
            self.spark.stop()
