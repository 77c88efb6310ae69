"""The Ray executor on a real two-node cluster on 127.0.0.1: same bytes as the local executor,
resume across executors, and a worker killed mid-task retried to the same output."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import pytest
import yaml

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

from corpusforge import run  # noqa: E402
from corpusforge.recipe import load_recipe  # noqa: E402
from corpusforge.shards.validate import validate_output  # noqa: E402
from tests.ingest.test_s3 import moto_s3  # noqa: E402

RAY = Path(sys.executable).with_name("ray")
# A cluster on loopback for the tests only: no token authentication (Ray 2.5x+ otherwise reads a
# token from ~/.ray, which a node and the driver may not agree on).
_TEST_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _node_ports() -> list[str]:
    names = ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--metrics-export-port",
             "--runtime-env-agent-port")
    return [f"{n}={p}" for n, p in zip(names, _free_ports(len(names)), strict=True)]


def _processes_of(temp_dir: str) -> list:
    """Every process of our cluster: those naming its temp dir, and their descendants."""
    found = {}
    for p in psutil.process_iter(["cmdline"]):
        if any(temp_dir in a for a in (p.info["cmdline"] or [])):
            found[p.pid] = p
    for p in list(found.values()):
        try:
            for c in p.children(recursive=True):
                found[c.pid] = c
        except psutil.NoSuchProcess:
            pass
    return list(found.values())


def _ray_cli(*args: str) -> None:
    done = subprocess.run([str(RAY), *args], env=os.environ, capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise RuntimeError(f"ray {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


@pytest.fixture(scope="module")
def s3_env():
    """A moto S3 server on 127.0.0.1 for this module, and the environment that reaches it."""
    with moto_s3() as env:
        yield env


@pytest.fixture(scope="module")
def cluster(s3_env):
    """A head and a second node, one CPU each, started with the ``ray`` CLI once for this module
    (the only one that uses it) and stopped after it, so idle raylets never outlive these tests.

    The nodes start with the S3 server's environment (as real nodes carry their credentials).
    Teardown stops exactly this cluster's processes (found by its own temp dir), not ``ray stop``,
    which would stop every Ray instance of this user on the machine.
    """
    temp_dir = tempfile.mkdtemp(prefix="cfr-", dir="/tmp")  # short: Unix socket paths are capped
    env = {**_TEST_ENV, **s3_env}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    port, dash = _free_ports(2)
    common = ["--num-cpus", "1", "--temp-dir", temp_dir, "--disable-usage-stats"]
    try:
        _ray_cli("start", "--head", "--port", str(port), "--include-dashboard=false", f"--dashboard-port={dash}",
                 *common, *_node_ports())
        _ray_cli("start", "--address", f"127.0.0.1:{port}", *common, *_node_ports())
        address = f"127.0.0.1:{port}"
        ray.init(address=address, logging_level="ERROR")
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        ray.shutdown()
        yield address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        procs = _processes_of(temp_dir)
        for p in procs:
            try:
                p.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(procs, timeout=2)
        for p in alive:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        shutil.rmtree(temp_dir, ignore_errors=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


DOC = Path(__file__).resolve().parents[2] / "docs" / "ray.md"


def _recipe(shared_data: Path) -> dict:
    """The recipe of docs/ray.md, its source in ../shared/data: minhash_dedup makes decide (per band)
    and finalize stages, which must run as Ray tasks too."""
    recipe = yaml.safe_load(re.search(r"```yaml\n(.*?)```", DOC.read_text(), re.S).group(1))
    assert recipe["sources"][0]["path"] == "../shared/data/wikitext-2/valid.txt"  # relative to the checkout
    recipe["sources"][0]["path"] = str(shared_data / "wikitext-2" / "valid.txt")
    assert recipe["executor"]["kind"] == "ray"
    return recipe


@pytest.fixture(scope="module")
def local_output(shared_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "out"
    run(_recipe(shared_data), output=str(out), workers=1, executor="local")
    return out


def _shard_bytes(out: Path) -> dict[str, bytes]:
    index = orjson.loads((out / "shard_index.json").read_bytes())
    return {s["path"]: (out / s["path"]).read_bytes() for s in index["shards"]}


def _assert_same_output(a: Path, b: Path) -> None:
    assert (a / "shard_index.json").read_bytes() == (b / "shard_index.json").read_bytes()
    sa, sb = _shard_bytes(a), _shard_bytes(b)
    assert sa == sb and len(sa) > 3
    assert (a / "tokenizer.json").read_bytes() == (b / "tokenizer.json").read_bytes()
    assert (a / "version.json").read_bytes() == (b / "version.json").read_bytes()
    lineage = sorted(p.relative_to(a) for p in (a / "lineage").rglob("*.parquet"))
    assert lineage and lineage == sorted(p.relative_to(b) for p in (b / "lineage").rglob("*.parquet"))
    assert all((a / p).read_bytes() == (b / p).read_bytes() for p in lineage)


def test_documented_recipe_on_a_cluster_is_byte_identical_to_the_local_executor(cluster, local_output,
                                                                                shared_data, tmp_path):
    doc = _recipe(shared_data)
    recipe = load_recipe({**doc, "executor": {**doc["executor"], "address": cluster}})
    local = load_recipe({**doc, "executor": {"task_bytes": doc["executor"]["task_bytes"]}})
    assert recipe.fingerprint() == local.fingerprint()
    stats = run(recipe, output=str(tmp_path / "ray"))
    _assert_same_output(local_output, tmp_path / "ray")
    decide = [s for s in stats["stages"] if s["kind"] == "decide"]
    assert decide and decide[0]["tasks"] > 1 and all(s["peak_rss_mb"] > 0 for s in decide)


def test_ray_resumes_a_local_run_without_redoing_any_task(cluster, local_output, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(local_output, out)
    records = {p: p.stat().st_mtime_ns for p in (out / "_state").glob("*/*.json")}
    shards = out / "_work" / "shards"
    finished = {p: p.stat().st_mtime_ns for p in shards.rglob("*") if p.is_file()}
    run(load_recipe(out / "recipe.yaml"), output=str(out), executor="ray", address=cluster)
    assert records and {p: p.stat().st_mtime_ns for p in records} == records
    assert {p: p.stat().st_mtime_ns for p in finished} == finished
    _assert_same_output(local_output, out)


def _task_workers() -> list:
    """Ray worker processes running one of our tasks now (Ray titles them ``ray::<task name>``)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if cmd and cmd[0].startswith("ray::corpusforge_task"):
            found.append(p)
    return found


def test_a_worker_killed_mid_task_is_retried_to_the_same_output(cluster, local_output, shared_data, tmp_path):
    recipe_path = tmp_path / "recipe.yaml"
    recipe_path.write_text(yaml.safe_dump(_recipe(shared_data)))
    out = tmp_path / "killed"
    driver = subprocess.Popen([sys.executable, "-m", "corpusforge.cli", "run", str(recipe_path), "-o", str(out),
                               "--executor", "ray", "--address", cluster, "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and driver.poll() is None and time.monotonic() < deadline:
        for p in _task_workers():
            try:
                p.send_signal(signal.SIGKILL)
                killed = p.pid
                break
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.005)
    log = driver.communicate(timeout=180)[0].decode(errors="replace")
    assert killed is not None, f"no task worker was seen running; driver said:\n{log}"
    assert driver.returncode == 0, log
    _assert_same_output(local_output, out)


def test_a_cluster_reads_its_source_from_s3_and_writes_its_output_to_s3(cluster, shared_data, tmp_path,
                                                                        monkeypatch):
    import fsspec
    import s3fs

    fsspec.filesystem("s3").clear_instance_cache()
    monkeypatch.setenv("CORPUSFORGE_MIRROR_DIR", str(tmp_path / "mirror"))
    fs = s3fs.S3FileSystem()
    fs.mkdir("raycorpus")
    fs.put(str(shared_data / "wikitext-2" / "valid.txt"), "raycorpus/in/valid.txt")
    doc = _recipe(shared_data)
    recipe = {**doc, "sources": [{**doc["sources"][0], "path": "s3://raycorpus/in"}]}
    run(recipe, output="s3://raycorpus/out", executor="ray", address=cluster)
    run(recipe, output=str(tmp_path / "local"), executor="local", workers=1)
    assert validate_output("s3://raycorpus/out") == ([], validate_output(tmp_path / "local")[1])
    local = tmp_path / "local"
    assert fs.cat_file("raycorpus/out/shard_index.json") == (local / "shard_index.json").read_bytes()
    for path, data in _shard_bytes(local).items():
        assert fs.cat_file(f"raycorpus/out/{path}") == data
    assert len(fs.find("raycorpus/out/_state/minhash_dedup")) > 1


def _most_tasks_running_at_once(address: str, max_in_flight: int, payloads: list[float]) -> tuple[int, dict]:
    """Run ``time.sleep`` over ``payloads`` on the cluster; the most task workers seen at once."""
    import threading

    from corpusforge.executors.ray import RayExecutor

    most, stop = [0], threading.Event()

    def watch() -> None:
        while not stop.is_set():
            most[0] = max(most[0], len(_task_workers()))
            time.sleep(0.01)

    ex = RayExecutor(address=address, max_in_flight=max_in_flight)
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert ex.workers == 2  # both nodes' CPUs
        got = dict(ex.map_unordered(time.sleep, payloads))
    finally:
        stop.set()
        watcher.join()
        ex.close()
    return most[0], got


def test_tasks_in_flight_are_bounded_and_every_result_comes_back(cluster):
    most, got = _most_tasks_running_at_once(cluster, 1, [0.3] * 4)
    assert got == {0: None, 1: None, 2: None, 3: None}
    assert most == 1  # one at a time, although two CPUs could run two
    assert _most_tasks_running_at_once(cluster, 2, [0.5] * 4)[0] == 2  # the count above can see two
