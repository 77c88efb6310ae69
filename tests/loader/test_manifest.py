import pytest
import yaml

from corpusforge.errors import RecipeError
from corpusforge.tokenize.encoder import load_encoder
from corpusforge.tokenize.manifest import manifest_texts
from corpusforge.tokenize.text import train_bpe

from .conftest import DATA, run_recipe


@pytest.fixture
def manifest(tmp_path):
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump({"sources": [
        {"path": str(DATA / "prose" / "gutenberg" / "pg26184.txt"), "text_unit": "paragraph", "max_samples": 50},
        {"path": str(DATA / "wikitext-2" / "valid.txt"), "text_unit": "line", "max_samples": 100},
    ]}))  # fmt: skip
    return path


def test_manifest_takes_max_samples_documents_from_each_source(manifest, tmp_path):
    texts = list(manifest_texts(manifest, tmp_path))
    wiki = (DATA / "wikitext-2" / "valid.txt").read_text()
    assert len(texts) == 150
    assert all(t in wiki for t in texts[50:]) and not any(t in wiki for t in texts[:50])


def test_manifest_stops_at_the_sample_budget(manifest, tmp_path):
    texts = list(manifest_texts(manifest, tmp_path, budget=2000))
    assert sum(map(len, texts[:-1])) < 2000 <= sum(map(len, texts))


def test_recipe_trains_the_tokenizer_on_the_manifest(manifest, tmp_path, shards):
    out = run_recipe(tmp_path / "out", tokenizer={"vocab_size": 400, "manifest": str(manifest)})
    expect = train_bpe(manifest_texts(manifest, tmp_path), 400).to_str(pretty=True).encode()
    assert (out / "tokenizer.json").read_bytes() == expect
    assert expect != (shards / "tokenizer.json").read_bytes()  # the curated text trains another one
    assert load_encoder(out / "tokenizer.json").vocab_size == 400


def test_a_missing_manifest_is_reported(tmp_path):
    with pytest.raises(RecipeError, match="tokenizer.manifest: '.*nope.yaml' does not exist"):
        run_recipe(tmp_path / "out", tokenizer={"vocab_size": 400, "manifest": str(tmp_path / "nope.yaml")})
