import pytest

from corpusforge.errors import RecipeError
from corpusforge.recipe import Recipe
from corpusforge.registry import STEPS


def build(steps):
    return Recipe.model_validate({"sources": [{"path": "."}], "steps": steps}).build_steps()


def test_curate_steps_are_registered():
    assert {"gopher_quality", "gopher_repetition", "c4_quality", "fineweb_quality", "language_id", "toxicity"} <= set(
        STEPS.names()
    )


def test_yaml_values_are_validated_into_step_options():
    rep, c4 = build([
        {"type": "gopher_repetition", "top_ngram_char_frac": {"2": 0.5}},
        {"type": "c4_quality", "mode": "both", "bad_words": None},
    ])
    assert rep.top_ngrams == {2: 0.5}
    assert (c4.mode, c4.bad_words) == ("both", None)


def test_unknown_mode_names_the_field():
    with pytest.raises(RecipeError, match=r"steps\[0\]\.mode"):
        build([{"type": "fineweb_quality", "mode": "nope"}])
