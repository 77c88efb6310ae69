import re
from pathlib import Path

import pytest
import yaml

from corpusforge import run
from tests.conftest import SHARED_DATA

from .llm_server import ChatServer

DOC = Path(__file__).resolve().parents[2] / "docs" / "models.md"


def documented_recipe(step_type: str, option: str | None = None) -> dict:
    """The docs' full recipe (one with sources) that uses ``step_type`` (with ``option``), its path made absolute."""
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)]
    recipe = next(b for b in blocks if isinstance(b, dict) and "sources" in b
                  and any(s["type"] == step_type and (option is None or option in s) for s in b["steps"]))
    assert recipe["sources"][0]["path"] == "../shared/data/html/scrapinghub"  # relative to the checkout
    recipe["sources"][0]["path"] = str(SHARED_DATA / "html" / "scrapinghub")
    return recipe


def test_documented_judge_recipe_runs_and_a_rerun_is_free(tmp_path):
    pytest.importorskip("httpx")
    recipe = documented_recipe("llm_judge")
    with ChatServer() as srv:
        recipe["steps"][0]["base_url"] = srv.base_url
        stats = run(recipe, output=str(tmp_path / "out"), workers=1, progress=False)
        judged = stats["stages"][0]["steps"][1]
        assert judged["name"] == "llm_judge" and judged["counts"]["requests"] == len(srv.log) > 10
        recipe["steps"][0]["min_score"] = 4  # a new threshold: the curate stage reruns, from the cache
        again = run(recipe, output=str(tmp_path / "out"), workers=1, progress=False)
    assert again["stages"][0]["steps"][1]["counts"]["requests"] == 0
    assert again["stages"][0]["steps"][1]["drops"] == {"below_min_score": judged["docs_in"]}  # the server says 3


def test_documented_augmentation_recipe_runs(tmp_path):
    stats = run(documented_recipe("paragraph_extraction"), output=str(tmp_path / "out"), workers=1, progress=False)
    read, extract, noise, edit = stats["stages"][0]["steps"]
    assert extract["docs_out"] > read["docs_out"] and noise["docs_out"] > extract["docs_out"]
    assert edit["drops"]["replaced_by_augmentation"] == edit["counts"]["augmented"]
    assert stats["documents"]["kept"] == edit["docs_out"]


def test_documented_ngram_perplexity_recipe_runs(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    snippet = next(b for b in blocks if "train_arpa(" in b)
    exec(snippet.replace("../shared/data", str(SHARED_DATA)).replace('"wiki3.arpa"', repr(str(tmp_path / "w.arpa"))), {})
    recipe = documented_recipe("perplexity", "ngram_backend")
    assert recipe["steps"][0]["model_path"] == "wiki3.arpa"
    recipe["steps"][0]["model_path"] = str(tmp_path / "w.arpa")
    stats = run(recipe, output=str(tmp_path / "out"), workers=1, progress=False)
    step = stats["stages"][0]["steps"][1]
    assert step["name"] == "perplexity" and 0 < step["drops"]["high_perplexity"] < step["docs_in"]
