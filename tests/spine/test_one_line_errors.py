"""A source or output out of reach ends `corpusforge run` with one line naming it and the reason,
exit code 1, never a traceback (issue 23): S3 without credentials, an endpoint or host refusing
connections, a missing output bucket, a missing url_file, an unset headers_env variable, gs:// and
az:// without their packages, and hf:// offline."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import yaml

from tests.ingest.test_s3 import s3_endpoint  # noqa: F401  (the moto server fixture)

SMALL = {"tokenizer": {"vocab_size": 300}, "sharding": {"sequence_length": 32}, "steps": []}


def _cli(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "corpusforge.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def _error_line(res) -> str:
    """The single stderr line of a failed run (no traceback, nothing else), checked to exit 1."""
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1 and "Traceback" not in res.stderr, (res.returncode, res.stderr)
    assert lines[0].startswith("error: ")
    return lines[0]


def _recipe(tmp_path, sources, output="out"):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"sources": sources, "output": {"path": output}, **SMALL}))
    return path


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


def _env(**over):
    env = {k: v for k, v in os.environ.items() if k not in over or over[k] is not None}
    env.update({k: v for k, v in over.items() if v is not None})
    return env


def _local_source(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "a small document about rivers and their banks"}\n')
    return {"name": "local", "path": str(tmp_path / "a.jsonl")}


@pytest.mark.usefixtures("s3_endpoint")
def test_s3_source_without_credentials_names_the_source_and_the_missing_credentials(tmp_path):
    recipe = _recipe(tmp_path, [{"name": "bucket", "path": "s3://corpus/in"}])
    res = _cli("run", str(recipe), "-q", env=_env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None))
    assert _error_line(res).startswith("error: source 'bucket' (s3://corpus/in): no S3 credentials found")


@pytest.mark.usefixtures("s3_endpoint")
def test_s3_output_without_credentials_names_the_output(tmp_path):
    recipe = _recipe(tmp_path, [_local_source(tmp_path)])
    res = _cli("run", str(recipe), "-q", "-o", "s3://corpus/out",
               env=_env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None,
                        CORPUSFORGE_MIRROR_DIR=str(tmp_path / "mirror")))
    assert _error_line(res).startswith("error: output s3://corpus/out: no S3 credentials found")


@pytest.mark.usefixtures("s3_endpoint")
def test_s3_endpoint_refusing_connections_names_the_source_and_the_endpoint(tmp_path):
    port = _closed_port()
    recipe = _recipe(tmp_path, [{"name": "bucket", "path": "s3://corpus/in"}])
    res = _cli("run", str(recipe), "-q", env=_env(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}"))
    assert _error_line(res) == (f"error: source 'bucket' (s3://corpus/in): cannot connect to the endpoint "
                                f"http://127.0.0.1:{port} (check AWS_ENDPOINT_URL / endpoint_url)")


def test_http_file_on_a_host_refusing_connections_names_the_source_and_the_host(tmp_path):
    port = _closed_port()
    url = f"http://127.0.0.1:{port}/data.jsonl"
    res = _cli("run", str(_recipe(tmp_path, [{"name": "web", "path": url}])), "-q")
    line = _error_line(res)
    assert line.startswith(f"error: source 'web' ({url}): cannot connect to 127.0.0.1:{port} ")


@pytest.mark.usefixtures("s3_endpoint")
def test_missing_output_bucket_is_named_before_anything_is_written(tmp_path):
    recipe = _recipe(tmp_path, [_local_source(tmp_path)])
    res = _cli("run", str(recipe), "-q", "-o", "s3://nosuchbucket/out",
               env=_env(CORPUSFORGE_MIRROR_DIR=str(tmp_path / "mirror")))
    assert _error_line(res) == ("error: output s3://nosuchbucket/out: the bucket 'nosuchbucket' does not exist "
                                "(create it, or name another with --output / output.path)")


def test_missing_url_file_names_the_source_and_the_file(tmp_path):
    recipe = _recipe(tmp_path, [{"type": "urls", "name": "pages", "url_file": str(tmp_path / "urls.txt")}])
    res = _cli("run", str(recipe), "-q")
    assert _error_line(res) == f"error: source 'pages': url_file {tmp_path / 'urls.txt'} does not exist"


def test_unset_headers_env_variable_stops_the_run_before_any_request(tmp_path):
    port = _closed_port()
    recipe = _recipe(tmp_path, [{"type": "rest_api", "name": "api", "url": f"http://127.0.0.1:{port}/items",
                                 "headers_env": {"Authorization": "CORPUSFORGE_TEST_UNSET_TOKEN"}}])
    res = _cli("run", str(recipe), "-q", env=_env(CORPUSFORGE_TEST_UNSET_TOKEN=None))
    assert _error_line(res) == ("error: source 'api': headers_env: environment variable "
                                "'CORPUSFORGE_TEST_UNSET_TOKEN' (for header Authorization) is not set")


def _without(tmp_path, *modules):
    """An environment in which importing ``modules`` fails, as if they were not installed."""
    shim = tmp_path / "shim"
    shim.mkdir(exist_ok=True)
    for m in modules:
        (shim / f"{m}.py").write_text(f"raise ImportError('No module named {m}')\n")
    return _env(PYTHONPATH=os.pathsep.join([str(shim), os.environ.get("PYTHONPATH", "")]))


def test_gs_source_without_gcsfs_names_the_cloud_extra(tmp_path):
    recipe = _recipe(tmp_path, [{"name": "gcs", "path": "gs://bucket/data/*.jsonl"}])
    res = _cli("run", str(recipe), "-q", env=_without(tmp_path, "gcsfs"))
    assert _error_line(res) == ("error: source 'gcs' (gs://bucket/data/*.jsonl): the filesystem package gcsfs is "
                                "not installed: pip install 'corpusforge[cloud]'")


def test_az_output_without_adlfs_names_the_cloud_extra(tmp_path):
    recipe = _recipe(tmp_path, [_local_source(tmp_path)])
    res = _cli("run", str(recipe), "-q", "-o", "az://container/out", env=_without(tmp_path, "adlfs"))
    assert _error_line(res) == ("error: output az://container/out: the filesystem package adlfs is not installed: "
                                "pip install 'corpusforge[cloud]'")


def test_hf_path_offline_says_the_hub_is_unreachable_and_how_to_use_a_local_copy(tmp_path):
    recipe = _recipe(tmp_path, [{"name": "wt", "path": "hf://datasets/Salesforce/wikitext/wikitext-2-raw-v1"}])
    line = _error_line(_cli("run", str(recipe), "-q", env=_env(HF_HUB_OFFLINE="1")))
    assert line.startswith("error: source 'wt' (hf://datasets/Salesforce/wikitext/wikitext-2-raw-v1): cannot reach "
                           "the HuggingFace Hub (offline: HF_HUB_OFFLINE is set); point `path:` at a local copy")
    assert "does not exist" not in line


def test_collect_name_as_the_readme_shows_it_writes_collect_name_in_the_working_folder(tmp_path):
    import datasets

    rows = {"instruction": [f"Say {i}" for i in range(6)], "context": [""] * 6, "response": [f"{i}" for i in range(6)]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "dolly-copy"))
    res = _cli("collect", "dolly", "--local-path", "dolly-copy", "-n", "5", "-w", "1", "--vocab-size", "300",
               "--sequence-length", "32", "-q", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    stats = yaml.safe_load((tmp_path / "collect-dolly" / "stats.json").read_text())
    assert stats["documents"]["read"] == 5


def test_collect_offline_hint_names_the_local_path_option(tmp_path):
    res = _cli("collect", "wikitext", "-o", str(tmp_path / "out"), "-q", env=_env(HF_HUB_OFFLINE="1"))
    lines = res.stderr.strip().splitlines()
    assert res.returncode != 0 and len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "then run again with --local-path DIR: corpusforge collect wikitext --local-path DIR" in lines[0]
    assert "`path: DIR`" not in lines[0]
