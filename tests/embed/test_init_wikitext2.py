"""``corpusforge init --preset wikitext2``: the WikiText-2 embeddings recipe, commented, that run takes unchanged."""

import shutil

import yaml
from click.testing import CliRunner

from corpusforge.cli import main
from corpusforge.state import read_json

from .conftest import RECIPE, wikitext_slice


def test_init_writes_the_wikitext2_recipe_and_run_accepts_it_unchanged(tmp_path, tiny_qwen3):
    data = wikitext_slice(tmp_path / "wikitext-2", 20_000)  # the first 20 kB of the shared valid.txt
    shutil.copytree(tiny_qwen3, tmp_path / "models" / "Qwen3-Embedding-0.6B")  # where the recipe expects its model
    path, out = tmp_path / "wt2.yaml", tmp_path / "out"
    cli = CliRunner()
    res = cli.invoke(main, ["init", str(path), "--preset", "wikitext2", "--data", "wikitext-2", "-o", str(out)])
    assert res.exit_code == 0, res.output
    text = path.read_text(encoding="utf-8")
    assert text.count("#") > 10 and "preset:" not in text  # commented; wikitext2 is no recipe preset
    written, shipped = yaml.safe_load(text), yaml.safe_load(RECIPE.read_text(encoding="utf-8"))
    assert written["sources"][0].pop("path") == "wikitext-2" and written["output"].pop("path") == str(out)
    assert written["embeddings"].pop("model") == written["steps"][2].pop("tokenizer") == "models/Qwen3-Embedding-0.6B"
    del shipped["sources"][0]["path"], shipped["output"]["path"], shipped["embeddings"]["model"]
    del shipped["steps"][2]["tokenizer"]
    assert written == shipped  # the same recipe as recipes/wikitext2-embeddings.yaml
    res = cli.invoke(main, ["run", str(path), "-q", "-w", "1"])  # source and model paths are relative to the recipe
    assert res.exit_code == 0, res.output
    assert "texts are longer than the embedding model's window (128 tokens)" in res.output
    index, stats = read_json(out / "embeddings" / "index.json"), read_json(out / "stats.json")
    rows = sum(p["rows"] for s in index["splits"].values() for p in s["parts"])
    assert (out / "embeddings" / "train.parquet").is_file() and (out / "embeddings" / "train_embeddings.safetensors").is_file()
    assert rows == stats["documents"]["kept"] > 5
    assert stats["documents"]["read"] == 1 and data.name == "wikitext-2"  # one file, read whole
