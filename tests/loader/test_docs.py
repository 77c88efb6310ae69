import json
import re
from pathlib import Path

import yaml

from corpusforge import run

from .conftest import DATA

DOC = Path(__file__).resolve().parents[2] / "docs" / "loader.md"


def test_the_documented_recipe_runs(tmp_path):
    block = re.search(r"```yaml\n(.*?)```", DOC.read_text(), re.S).group(1)
    recipe = yaml.safe_load(block)
    recipe["sources"][0]["path"] = str(DATA / "prose" / "gutenberg" / "pg26184.txt")
    run(recipe, output=str(tmp_path / "out"), workers=1)
    index = json.loads((tmp_path / "out" / "shard_index.json").read_text())
    assert index["tokenizer"]["path"] == "tokenizer.model" and index["packing"] == "pad" and index["shuffled"]
    assert all(s["path"].endswith(".safetensors.zst") and s["samples"] <= 1024 for s in index["shards"])
