from __future__ import annotations

import re
from pathlib import Path

import yaml

from corpusforge import run

from .conftest import DATA

DOC = Path(__file__).resolve().parents[2] / "docs" / "dedup.md"


def test_documented_recipe_runs(tmp_path):
    block = re.search(r"```yaml\n(.*?)```", DOC.read_text(), re.S).group(1)
    recipe = yaml.safe_load(block)
    assert recipe["sources"][0]["path"] == "../shared/data/wikitext-2"  # relative to the checkout
    recipe["sources"][0]["path"] = str(DATA / "wikitext-2")
    recipe["sources"][0]["include"] = ["valid.txt"]  # one file keeps the test short
    recipe["steps"][-1]["index_dir"] = str(tmp_path / "index")
    stats = run(recipe, output=str(tmp_path / "out"), workers=1, progress=False)
    names = [s["name"] for s in stats["stages"]]
    assert "minhash_dedup_2_finalize" in names and (tmp_path / "index" / "params.json").exists()
    assert 0 < stats["documents"]["kept"] < stats["documents"]["read"]
