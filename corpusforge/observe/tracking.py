"""Tell experiment trackers about a finished run: MLflow and Weights & Biases, both optional.

Params are the recipe flattened to dotted keys (``sharding.sequence_length``), secrets in URLs
redacted as in ``recipe.yaml``; metrics are the
run's totals and, per step, documents in/out, drops and throughput; the data card, the report,
``stats.json`` and ``shard_index.json`` go along as files. Both libraries come with
``pip install 'corpusforge[tracking]'`` and are imported only when a recipe enables them.

Each logged run is recorded in ``_state/tracking.json`` with the output's version: a re-run that
leaves the same output (nothing to do) logs no second run, and reports the recorded one.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from corpusforge import layout as layout_names
from corpusforge.errors import CorpusforgeError
from corpusforge.layout import OutputLayout
from corpusforge.observe.summary import dedup_rows, step_rows
from corpusforge.recipe import MlflowConfig, Recipe, WandbConfig
from corpusforge.redact_urls import redact_secrets, redact_text
from corpusforge.state import atomic_write_json, read_json

_INSTALL = "pip install 'corpusforge[tracking]'"
ARTIFACTS = (layout_names.CARD, layout_names.REPORT, layout_names.STATS, layout_names.INDEX)
_MAX_PARAM = 6000  # MLflow's limit on a param value's length
TRACKED_NAME = layout_names.TRACKING  # the runs logged for this output, per tracker


def check_tracking(recipe: Recipe) -> None:
    """Fail before any work when an enabled tracker's library is not installed."""
    for enabled, module in ((recipe.tracking.mlflow.enabled, "mlflow"), (recipe.tracking.wandb.enabled, "wandb")):
        if enabled:
            try:
                __import__(module)
            except ImportError:
                raise CorpusforgeError(f"tracking.{module}.enabled needs the {module} package: {_INSTALL}") from None


def flatten_params(data: Any, prefix: str = "") -> dict[str, str]:
    """``{"sharding.sequence_length": "2048", "steps.0.type": "normalize"}``: every leaf as a string."""
    out: dict[str, str] = {}
    if isinstance(data, dict):
        for k, v in data.items():
            out.update(flatten_params(v, f"{prefix}{k}."))
    elif isinstance(data, list) and data and any(isinstance(v, (dict, list)) for v in data):
        for i, v in enumerate(data):
            out.update(flatten_params(v, f"{prefix}{i}."))
    else:
        text = data if isinstance(data, str) else json.dumps(data)
        out[prefix.rstrip(".")] = text[:_MAX_PARAM]
    return out


def run_metrics(stats: dict[str, Any]) -> dict[str, float]:
    """Totals, per-split and per-source tokens, per-step counts and throughput, per-stage seconds."""
    docs = stats["documents"]
    m: dict[str, float] = {
        "documents.read": docs["read"], "documents.quarantined": docs["quarantined"], "documents.kept": docs["kept"],
        "tokens": stats["tokens"], "input_bytes": stats["input"]["bytes"], "seconds": stats["seconds"],
        "mb_per_s": stats.get("mb_per_s") or 0.0,
    }
    for k, v in stats.get("shards", {}).items():
        m[f"shards.{k}"] = v
    for split, c in stats.get("splits", {}).items():
        m[f"split.{split}.documents"], m[f"split.{split}.tokens"] = c["documents"], c["tokens"]
    for src, c in stats.get("tokens_by_source", {}).items():
        m[f"source.{src}.tokens"], m[f"source.{src}.documents"] = c["tokens"], c["documents"]
    for i, r in enumerate(step_rows(stats)):
        key = f"step.{i:02d}.{r['step']}"
        m[f"{key}.docs_in"], m[f"{key}.docs_out"], m[f"{key}.dropped"] = r["docs_in"], r["docs_out"], r["dropped"]
        m[f"{key}.drop_rate"], m[f"{key}.modified"], m[f"{key}.seconds"] = r["drop_rate"], r["modified"], r["seconds"]
        if r["seconds"] > 0:
            m[f"{key}.docs_per_s"] = r["docs_in"] / r["seconds"]
            m[f"{key}.mb_per_s"] = r["chars_in"] / 1e6 / r["seconds"]
    for r in dedup_rows(stats):
        m[f"dedup.{r['stage']}.removed"], m[f"dedup.{r['stage']}.rate"] = r["removed"], r["rate"]
    for stage in stats.get("stages", []):
        m[f"stage.{stage['name']}.seconds"] = stage["seconds"]
        if "peak_rss_mb" in stage:
            m[f"stage.{stage['name']}.peak_rss_mb"] = stage["peak_rss_mb"]
    return {k: float(v) for k, v in m.items()}


def _artifacts(output: Path) -> list[Path]:
    return [output / name for name in ARTIFACTS if (output / name).is_file()]


def mlflow_uri(cfg: MlflowConfig, output: Path) -> str:
    """The tracking URI a run logs to: the recipe's, else a sqlite store inside the output."""
    return cfg.tracking_uri or f"sqlite:///{OutputLayout(output).tracker('mlflow.db')}"


def log_mlflow(cfg: MlflowConfig, recipe: Recipe, output: Path, stats: dict[str, Any]) -> str:
    """One MLflow run with params, metrics and files; returns its run id."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    uri = mlflow_uri(cfg, output)
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(cfg.experiment)
    if exp is not None:
        exp_id = exp.experiment_id
    else:
        # A local database keeps its files beside it, not in ./mlruns of whatever folder the run started in.
        where = Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts" if uri.startswith("sqlite:///") else None
        exp_id = client.create_experiment(cfg.experiment, artifact_location=where.as_uri() if where else None)
    run = client.create_run(exp_id, run_name=recipe.name,
                            tags={"corpusforge.recipe_sha256": stats.get("recipe_sha256", ""),
                                  "corpusforge.output": redact_text(str(output))})
    run_id = run.info.run_id
    try:
        params = [Param(k, v) for k, v in flatten_params(redact_secrets(recipe.model_dump(mode="json"))).items()]
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in run_metrics(stats).items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            client.log_batch(run_id, params=params[i:i + 100])
        for i in range(0, len(metrics), 1000):
            client.log_batch(run_id, metrics=metrics[i:i + 1000])
        for path in _artifacts(output):
            client.log_artifact(run_id, str(path))
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id)
    return run_id


def log_wandb(cfg: WandbConfig, recipe: Recipe, output: Path, stats: dict[str, Any]) -> Path:
    """One W&B run (offline: a local run folder under ``<output>/wandb``); returns the run's folder."""
    import wandb

    # No system-metrics sampler and no environment probe: they would poll hardware and metadata
    # endpoints, which an offline run on a data machine has no use for.
    settings = wandb.Settings(silent=True, console="off", x_disable_stats=True, x_disable_meta=True,
                              x_disable_machine_info=True, disable_git=True, save_code=False,
                              disable_job_creation=True)
    run = wandb.init(project=cfg.project, mode=cfg.mode, dir=str(output), name=recipe.name,
                     config=redact_secrets(recipe.model_dump(mode="json")), settings=settings, reinit="create_new",
                     tags=["corpusforge"])
    try:
        metrics = run_metrics(stats)
        run.log(metrics)
        run.summary.update(metrics)
        for path in _artifacts(output):
            run.save(str(path), base_path=str(output), policy="now")
    finally:
        run.finish()
    return Path(run.dir).parent


def _mlflow_run_exists(uri: str, run_id: str) -> bool:
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        return MlflowClient(tracking_uri=uri).get_run(run_id).info.lifecycle_stage != "deleted"
    except MlflowException:
        return False


def _output_version(output: Path) -> str | None:
    try:
        return read_json(OutputLayout(output).version)["version"]
    except (OSError, ValueError, KeyError):
        return None


def track_run(recipe: Recipe, output: str | os.PathLike[str], stats: dict[str, Any]) -> dict[str, str]:
    """Log the run to every enabled tracker; returns ``{"mlflow": run id, "wandb": run folder}``.

    A tracker that already logged this output at its current version (``_state/tracking.json``;
    same store and experiment or project), whose run still exists, is not logged to again: the
    recorded run is returned, so re-running a finished recipe adds no duplicate run.
    """
    output = Path(output)
    version = _output_version(output)
    record_path = OutputLayout(output).tracking
    try:
        record: dict[str, Any] = read_json(record_path)
    except (OSError, ValueError):
        record = {}
    logged = dict(record)
    done: dict[str, str] = {}
    if recipe.tracking.mlflow.enabled:
        cfg = recipe.tracking.mlflow
        # The default store is inside the output: recorded as null, so a moved output still matches.
        where = {"tracking_uri": cfg.tracking_uri, "experiment": cfg.experiment, "version": version}
        prev = record.get("mlflow") or {}
        if version and all(prev.get(k) == v for k, v in where.items()) and _mlflow_run_exists(
                mlflow_uri(cfg, output), prev.get("run_id", "")):
            done["mlflow"] = prev["run_id"]
        else:
            done["mlflow"] = log_mlflow(cfg, recipe, output, stats)
            logged["mlflow"] = {**where, "run_id": done["mlflow"]}
    if recipe.tracking.wandb.enabled:
        cfg_w = recipe.tracking.wandb
        where = {"project": cfg_w.project, "mode": cfg_w.mode, "version": version}
        prev = record.get("wandb") or {}
        # An offline run is a folder of the output: gone (deleted by hand) means log it again.
        if version and all(prev.get(k) == v for k, v in where.items()) and prev.get("run_dir") and (
                cfg_w.mode == "online" or (output / prev["run_dir"]).is_dir()):
            done["wandb"] = str(output / prev["run_dir"])
        else:
            run_dir = log_wandb(cfg_w, recipe, output, stats)
            done["wandb"] = str(run_dir)
            rel = run_dir.relative_to(output) if run_dir.is_relative_to(output) else run_dir
            logged["wandb"] = {**where, "run_dir": rel.as_posix()}
    if logged != record and version:
        atomic_write_json(record_path, logged)
    return done
