"""``corpusforge embed OUTPUT``: (re)compute the embeddings of a finished run from its staged documents.

The run's own recipe (``OUTPUT/recipe.yaml``) and plan say which documents there are; the options
given here replace fields of its ``embeddings`` section (or of the defaults, if it had none). Only the
embeddings stage runs: curation, dedup and shards are not touched.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from corpusforge import layout as layout_names
from corpusforge.errors import CorpusforgeError
from corpusforge.layout import OutputLayout


def embed_output(output: str | Path, workers: int | None = None, progress: bool = False,
                 **options: Any) -> dict[str, Any]:
    """Embed ``output``'s curated documents with its recipe's ``embeddings`` section updated by ``options``."""
    from pydantic import ValidationError

    from corpusforge.config import format_validation_error
    from corpusforge.errors import RecipeError
    from corpusforge.models.checks import check_models
    from corpusforge.pipeline import Pipeline
    from corpusforge.recipe import Recipe, load_recipe
    from corpusforge.runner import embeddings_stage
    from corpusforge.sources.base import TaskInput
    from corpusforge.state import read_json

    out = Path(output).expanduser().resolve()
    layout = OutputLayout(out)
    recipe_file, plan_file = layout.recipe, layout.plan
    if not recipe_file.is_file() or not plan_file.is_file():
        raise CorpusforgeError(f"{out}: not a corpusforge output (no {layout_names.RECIPE} or {layout_names.PLAN}); "
                               "run a recipe into it first")
    data = load_recipe(recipe_file).model_dump(mode="json")
    data["embeddings"] = {**(data.get("embeddings") or {}), **{k: v for k, v in options.items() if v is not None}}
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as err:
        raise RecipeError(format_validation_error(err, "", model=Recipe)) from None
    check_models(recipe, steps=False)
    plan = [TaskInput.from_dict(t) for t in read_json(plan_file)]
    pipe = Pipeline(recipe, out, plan)
    last = len(pipe.boundaries) if pipe.segments[-1] or not pipe.boundaries else len(pipe.boundaries) - 1
    missing = [t for t in range(len(plan)) if not pipe.staged_path(last, t).exists()]
    if missing:
        raise CorpusforgeError(f"{out}: the staged documents of {len(missing)} task(s) are missing (e.g. "
                               f"{pipe.staged_path(last, missing[0])}); run the recipe to the end first")
    embeddings_stage(pipe, workers=workers, progress=progress)
    from corpusforge.maintain.version import write_version
    from corpusforge.observe.card import write_card

    if layout.version.is_file():  # a finished run: its version record and card now name these vectors
        write_version(out)
        write_card(out)
    return read_json(layout.embeddings_index)


@click.command()
@click.argument("output", type=click.Path(file_okay=False, exists=True))
@click.option("--model", type=click.Path(file_okay=False, exists=True),
              help="Local model folder (default: the recipe's, else the bundled all-MiniLM-L6-v2).")
@click.option("--pooling", type=click.Choice(["auto", "mean", "cls", "last_token"]))
@click.option("--dimensions", type=click.IntRange(min=1), help="Matryoshka: keep the first N components.")
@click.option("--dtype", type=click.Choice(["float32", "float16"]), help="Stored dtype of the vectors.")
@click.option("--instruction", help="Qwen3-Embedding instruction ('Instruct: ...\\nQuery:' format).")
@click.option("--prefix", help="Raw text put before every document, e.g. 'passage: '.")
@click.option("--max-length", type=click.IntRange(min=2), help="Tokens per document (default: the model's).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Documents per forward pass (halved on OOM).")
@click.option("--device", help="cuda, cuda:1 or cpu (default: cuda when available).")
@click.option("--no-normalize", is_flag=True, help="Keep raw pooled vectors (no L2 normalisation).")
@click.option("--workers", "-w", type=click.IntRange(min=1), help="Worker processes (use 1 on a single GPU).")
@click.option("--quiet", "-q", is_flag=True)
def embed(output: str, model: str | None, pooling: str | None, dimensions: int | None, dtype: str | None,
          instruction: str | None, prefix: str | None, max_length: int | None, batch_size: int | None,
          device: str | None, no_normalize: bool, workers: int | None, quiet: bool) -> None:
    """Embed the curated documents of OUTPUT (a finished run) into OUTPUT/embeddings/."""
    from rich.console import Console

    console = Console(stderr=True)
    try:
        index = embed_output(output, workers=workers, progress=not quiet, model=model, pooling=pooling,
                             dimensions=dimensions, dtype=dtype, instruction=instruction, prefix=prefix,
                             max_length=max_length, batch_size=batch_size, device=device,
                             normalize=False if no_normalize else None)
    except (CorpusforgeError, ValueError) as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    rows = ", ".join(f"{s} {v['rows']:,}" for s, v in index["splits"].items())
    console.print(f"embeddings: {rows} rows of dim {index['dim']} ({index['pooling']}, {index['dtype']}) in "
                  f"{Path(output) / 'embeddings'}", highlight=False, soft_wrap=True)


COMMANDS = [embed]
