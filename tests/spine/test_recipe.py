"""Recipes are validated up front, with errors that name the field, the value and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpusforge.demo import init_text
from corpusforge.errors import RecipeError
from corpusforge.recipe import load_recipe


def _src(tmp_path: Path) -> list[dict]:
    (tmp_path / "a.txt").write_text("hello world " * 20)
    return [{"path": str(tmp_path / "a.txt")}]


def test_unknown_step_names_field_value_and_allowed(tmp_path):
    with pytest.raises(RecipeError) as err:
        load_recipe({"sources": _src(tmp_path), "steps": [{"type": "normalize"}, {"type": "exact_dedupe"}]})
    msg = str(err.value)
    assert "steps[1].type" in msg
    assert "'exact_dedupe'" in msg
    assert "did you mean 'exact_dedup'" in msg
    assert "quality_thresholds" in msg  # the allowed names are listed


def test_bad_step_value_names_field_and_value(tmp_path):
    with pytest.raises(RecipeError) as err:
        load_recipe({"sources": _src(tmp_path), "steps": [{"type": "quality_thresholds", "min_chars": "many"}]})
    assert "steps[0].min_chars: value 'many' is invalid" in str(err.value)


def test_unknown_step_option_lists_allowed_options(tmp_path):
    with pytest.raises(RecipeError) as err:
        load_recipe({"sources": _src(tmp_path), "steps": [{"type": "normalize", "from": "NFC"}]})
    msg = str(err.value)
    assert "steps[0].from: unknown option" in msg and "form" in msg


def test_bad_literal_names_allowed_values(tmp_path):
    with pytest.raises(RecipeError) as err:
        load_recipe({"sources": _src(tmp_path), "sharding": {"format": "tfrecord"}})
    assert "sharding.format: value 'tfrecord' is invalid" in str(err.value)
    assert "'safetensors'" in str(err.value)


def test_split_ratios_must_sum_to_one(tmp_path):
    with pytest.raises(RecipeError, match="sum to 1"):
        load_recipe({"sources": _src(tmp_path), "sharding": {"splits": {"train": 0.9, "val": 0.2}}})


def test_presets_set_seed_shard_sizes_and_recipe_values_win(tmp_path):
    sizes = {p: load_recipe({"sources": _src(tmp_path), "preset": p}).sharding.max_shard_bytes
             for p in ("small", "production", "multimodal")}
    assert sizes == {"small": 100_000_000, "production": 1_000_000_000, "multimodal": 500_000_000}
    r = load_recipe({"sources": _src(tmp_path), "preset": "production", "sharding": {"max_shard_bytes": 123_456}})
    assert r.sharding.max_shard_bytes == 123_456 and r.output.audit is True


def test_yaml_relative_source_paths_resolve_against_the_recipe_file(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("x")
    (tmp_path / "r.yaml").write_text("sources:\n  - path: data\n")
    r = load_recipe(tmp_path / "r.yaml")
    assert r.sources[0]["path"] == str(tmp_path / "data")


def test_missing_recipe_file_is_a_clear_error(tmp_path):
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.yaml")


@pytest.mark.parametrize("preset", [None, "small", "production", "multimodal"])
def test_init_recipe_is_accepted_unchanged(tmp_path, preset):
    path = tmp_path / "recipe.yaml"
    path.write_text(init_text(str(path), str(tmp_path / "out"), preset))
    r = load_recipe(path)
    assert [s["type"] for s in r.steps] == ["normalize", "quality_thresholds", "exact_dedup"]
    assert r.preset == preset


def test_fingerprint_ignores_output_path_and_workers(tmp_path):
    base = {"sources": _src(tmp_path)}
    a = load_recipe({**base, "output": {"path": "x"}, "executor": {"workers": 1}})
    b = load_recipe({**base, "output": {"path": "y"}, "executor": {"workers": 4}})
    c = load_recipe({**base, "seed": 1})
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_unknown_section_option_lists_that_sections_options(tmp_path):
    with pytest.raises(RecipeError) as err:
        load_recipe({"sources": _src(tmp_path), "sharding": {"max_shard_bytez": 10}})
    msg = str(err.value)
    assert "sharding.max_shard_bytez: unknown option" in msg and "max_shard_bytes" in msg and "sequence_length" in msg
    with pytest.raises(RecipeError, match=r"executorr: unknown option; allowed options: .*executor"):
        load_recipe({"sources": _src(tmp_path), "executorr": {}})


def test_max_shard_size_bytes_is_an_alias_that_beats_the_preset(tmp_path):
    r = load_recipe({"sources": _src(tmp_path), "preset": "production", "sharding": {"max_shard_size_bytes": 123_456}})
    assert r.sharding.max_shard_bytes == 123_456
    with pytest.raises(RecipeError, match="give one of them"):
        load_recipe({"sources": _src(tmp_path), "sharding": {"max_shard_size_bytes": 20_000, "max_shard_bytes": 20_000}})
