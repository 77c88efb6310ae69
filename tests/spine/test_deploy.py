"""The files in deploy/ run what they say: the Slurm scripts and the Argo template's own commands,
executed here in their schedulers' order, give the bytes of `corpusforge run`; the Helm chart renders
(with helm, where installed) and never carries a credential; the Dockerfile installs what the README does."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from corpusforge import run
from tests.conftest import REPO, small_recipe
from tests.spine.test_schedule import _files

DEPLOY = REPO / "deploy"
CLI = f"{sys.executable} -m corpusforge.cli"


def _recipe(shared_data: Path, tmp_path: Path) -> Path:
    recipe = small_recipe([{"name": "wiki", "path": str(shared_data / "wikitext-2" / "valid.txt"),
                            "text_unit": "paragraph"}],
                          steps=[{"type": "normalize"}, {"type": "exact_dedup"}], executor={"task_bytes": 400_000})
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _corpusforge_on_path(tmp_path: Path) -> dict[str, str]:
    """An environment whose ``corpusforge`` is this checkout's, as in a container built from it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "corpusforge"
    exe.write_text(f"#!/bin/sh\nexec {CLI} \"$@\"\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(REPO)}


def test_the_slurm_scripts_run_every_stage_as_job_arrays_to_the_bytes_of_a_run(shared_data, tmp_path):
    recipe, out = _recipe(shared_data, tmp_path), tmp_path / "slurm-out"
    env = _corpusforge_on_path(tmp_path)
    # sbatch here runs the array's tasks at once, in reverse order, and prints a job id (--parsable):
    # dependencies hold because it returns only when the array is done.
    log = tmp_path / "sbatch.log"
    sbatch = tmp_path / "bin" / "sbatch"
    sbatch.write_text(f"""#!/usr/bin/env bash
set -euo pipefail
echo "$@" >> {log}
array=""; args=()
for a in "$@"; do case $a in --array=*) array=${{a#--array=}};; --*) ;; *) args+=("$a");; esac; done
for i in $(seq ${{array#*-}} -1 ${{array%-*}}); do SLURM_ARRAY_TASK_ID=$i bash "${{args[@]}}" > /dev/null; done
echo $RANDOM
""")
    sbatch.chmod(0o755)
    res = subprocess.run([str(DEPLOY / "slurm" / "submit.sh"), str(recipe), str(out), "--partition=cpu"],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert [line.split(":")[0] for line in res.stdout.splitlines()] == ["curate", "exact_dedup", "tokenizer",
                                                                       "shards", "index"]
    calls = log.read_text().splitlines()
    assert "--dependency=afterok:" not in calls[0] and all("--dependency=afterok:" in c for c in calls[1:])
    assert all("--partition=cpu" in c for c in calls)
    run(yaml.safe_load(recipe.read_text()), output=str(tmp_path / "local"), workers=1, progress=False)
    assert _files(out) == _files(tmp_path / "local")


def _argo_commands(template: dict, params: dict[str, str], mounts: dict[str, str]) -> list[str]:
    """A container's command line with its paths moved to ``mounts`` and Argo's ``{{...}}``
    parameters filled in."""
    c = template["container"]
    words = [*c.get("command", ["corpusforge"]), *c.get("args", [])]
    paths = re.compile("|".join(map(re.escape, mounts)))
    words = [paths.sub(lambda m: mounts[m.group(0)], w) for w in words]
    return [re.sub(r"\{\{([^}]+)\}\}", lambda m: params[m.group(1)], w) for w in words]


def test_the_argo_template_commands_in_argo_order_give_the_bytes_of_a_run(shared_data, tmp_path):
    spec = yaml.safe_load((DEPLOY / "argo" / "corpusforge-workflow.yaml").read_text())
    assert spec["kind"] == "WorkflowTemplate" and spec["spec"]["entrypoint"] == "main"
    templates = {t["name"]: t for t in spec["spec"]["templates"]}
    recipe, out = _recipe(shared_data, tmp_path), tmp_path / "argo-out"
    recipe_dir = tmp_path / "recipe"  # the ConfigMap's mount
    recipe_dir.mkdir()
    shutil.copy(recipe, recipe_dir / "recipe.yaml")
    env = _corpusforge_on_path(tmp_path)
    wf = {"workflow.parameters.output": str(out)}

    def sh(template: dict, params: dict[str, str], pod: Path) -> None:
        """A container of ``template`` run here: the ConfigMap's /recipe and the pod's /tmp are folders."""
        words = _argo_commands(template, params, {"/recipe/": f"{recipe_dir}/", "/tmp/": f"{pod}/"})
        res = subprocess.run(words, capture_output=True, text=True, env=env)
        assert res.returncode == 0, (words, res.stderr)

    plan_dir = tmp_path / "plan"
    plan_dir.mkdir()
    sh(templates["plan"], wf, plan_dir)
    stages = (plan_dir / "stages.json").read_text()
    seen = []
    while True:  # the `stages` template: split, fan out the first stage, recurse on the rest
        split_dir = tmp_path / f"split{len(seen)}"
        split_dir.mkdir()
        source = templates["split"]["script"]["source"].replace("{{inputs.parameters.stages}}", stages)
        subprocess.run([sys.executable, "-c", source.replace("/tmp/", f"{split_dir}/")], check=True)
        stage, tasks = (split_dir / "stage").read_text(), int((split_dir / "tasks").read_text())
        seen.append(stage)
        for t in reversed(range(tasks)):  # withSequence items run in parallel: any order
            params = {**wf, "inputs.parameters.stage": stage, "inputs.parameters.task": str(t)}
            sh(templates["task"], params, split_dir)
        if (split_dir / "more").read_text() != "true":
            break
        stages = (split_dir / "rest").read_text()
    assert seen == ["curate", "exact_dedup", "tokenizer", "shards", "index"]
    run(yaml.safe_load(recipe.read_text()), output=str(tmp_path / "local"), workers=1, progress=False)
    assert _files(out) == _files(tmp_path / "local")


CREDENTIAL = re.compile(r"secret|password|access_?key|token|credential", re.I)


def test_the_helm_chart_takes_no_credential_and_renders_where_helm_is_installed(shared_data, tmp_path):
    chart = DEPLOY / "helm" / "corpusforge"
    values = yaml.safe_load((chart / "values.yaml").read_text())
    assert {"recipe", "output", "mode", "schedule", "serviceAccount", "image"} <= set(values)
    assert not [k for k in _keys(values) if CREDENTIAL.search(k)]
    assert not [p for p in (chart / "templates").iterdir() if "kind: Secret" in p.read_text()]
    if shutil.which("helm") is None:
        pytest.skip("helm is not installed here: the chart's values and templates were checked as text only")
    recipe = _recipe(shared_data, tmp_path)
    schedule = tmp_path / "schedule.json"
    res = subprocess.run([*CLI.split(), "plan", str(recipe), "-o", str(tmp_path / "out"), "--json"], capture_output=True,
                         text=True)
    schedule.write_text(res.stdout)
    for mode in ("rayjob", "jobs"):
        rendered = subprocess.run(["helm", "template", "run1", str(chart), "--set", f"mode={mode}", "--set-file",
                                   f"recipe={recipe}", "--set-file", f"schedule={schedule}", "--set", "output=s3://b/r"],
                                  capture_output=True, text=True, check=True).stdout
        kinds = [d["kind"] for d in yaml.safe_load_all(rendered) if d]
        assert kinds.count("Job" if mode == "jobs" else "RayJob") == (5 if mode == "jobs" else 1)


def _keys(x) -> list[str]:
    if isinstance(x, dict):
        return [k for k, v in x.items() for k in [k, *_keys(v)]]
    if isinstance(x, list):
        return [k for v in x for k in _keys(v)]
    return []


def test_the_dockerfile_installs_the_package_as_the_readme_does_and_runs_the_cli_as_non_root():
    text = (DEPLOY / "Dockerfile").read_text()
    readme = (REPO / "README.md").read_text()
    assert "python3 -m venv .venv && .venv/bin/pip install -q -e ." in readme
    assert re.search(r"python3 -m venv /opt/corpusforge .*pip install -q --no-cache-dir \"\.\$\{EXTRAS:\+\[\$\{EXTRAS\}\]\}\"",
                     text.replace("\\\n", " ").replace("  ", " "), re.S)
    assert 'ENTRYPOINT ["corpusforge"]' in text and re.search(r"^USER 10001", text, re.M)
    assert re.search(r"^ARG EXTRAS=", text, re.M)
    # Every extra the Dockerfile's comment offers exists in pyproject.
    extras = set(re.findall(r"^(\w+) = \[", (REPO / "pyproject.toml").read_text(), re.M))
    offered = set(re.findall(r"\b(cloud|ray|spark|quality|privacy|dedup|media|ml|embed)\b", text.split("ARG PYTHON")[0]))
    assert offered and offered <= extras, offered - extras
