import re
from pathlib import Path

import yaml

from corpusforge import run

from .conftest import DATA

DOC = Path(__file__).resolve().parents[2] / "docs" / "curate.md"


def test_documented_recipe_runs(tmp_path):
    block = re.search(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S).group(1)
    recipe = yaml.safe_load(block)
    recipe["sources"][0]["path"] = str(DATA / "html" / "scrapinghub")
    stats = run(recipe, output=str(tmp_path / "out"), workers=1)
    steps = {s["name"]: s for stage in stats["stages"] for s in stage.get("steps", [])}
    assert steps["normalize"]["docs_in"] == 20
    assert steps["language_id"]["drops"] == {"language_not_allowed": 5}
    assert steps["c4_quality"]["drops"] == {}
