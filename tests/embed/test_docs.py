from __future__ import annotations

import re

import yaml
from click.testing import CliRunner

from corpusforge import run
from corpusforge.cli import main
from corpusforge.state import read_json

from .conftest import REPO, wikitext_slice

DOC = (REPO / "docs" / "embeddings.md").read_text(encoding="utf-8")


def test_the_documented_recipe_runs(tmp_path):
    recipe = yaml.safe_load(re.search(r"```yaml\n(.*?)```", DOC, re.S).group(1))
    assert recipe["sources"][0]["path"] == "../shared/data/wikitext-2"  # relative to the checkout
    recipe["sources"][0]["path"] = str(wikitext_slice(tmp_path / "data", 20_000))
    recipe["embeddings"]["max_length"] = 64  # speed; the stored shape does not depend on it
    run(recipe, output=str(tmp_path / "out"), workers=1)
    index = read_json(tmp_path / "out" / "embeddings" / "index.json")
    assert index["dim"] == 128 and index["dtype"] == "float16" and index["pooling"] == "mean"
    assert sum(s["rows"] for s in index["splits"].values()) > 0


def test_the_python_examples_run_against_a_recipe_output(wikitext_run, capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC, re.S)
    assert len(blocks) == 2
    exec(blocks[0].replace('"wt2"', repr(str(wikitext_run))), {})
    exec(blocks[1], {})
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("(3, 384) 0.") and re.match(r"torch.Size\(\[\d+, 32\]\)", out[-2])


def test_every_documented_embed_option_exists():
    usage = re.search(r"```\ncorpusforge embed OUTPUT(.*?)```", DOC, re.S).group(1)
    documented = set(re.findall(r"--[a-z-]+", usage))
    helptext = CliRunner().invoke(main, ["embed", "--help"]).output
    assert documented and documented <= set(re.findall(r"--[a-z-]+", helptext))
