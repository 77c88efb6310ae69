"""``corpusforge datasets`` and ``corpusforge collect``: well-known datasets to shards in one command."""

from __future__ import annotations

import sys

import click

from corpusforge.errors import CorpusforgeError


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON instead of a table.")
def datasets(as_json: bool) -> None:
    """List the catalog of well-known datasets that ``collect`` can run."""
    from corpusforge.sources.catalog import format_catalog, list_datasets

    if as_json:
        import json

        click.echo(json.dumps(list_datasets(), indent=2))
    else:
        click.echo(format_catalog())


@click.command()
@click.option("--dataset", "-d", "name", required=True, help="A name from `corpusforge datasets`.")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--max-samples", "-n", type=click.IntRange(min=1), help="Read at most this many records.")
@click.option("--preset", type=click.Choice(["small", "production", "multimodal"]), help="Recipe preset.")
@click.option("--local-path", type=click.Path(exists=True),
              help="A local copy (datasets.save_to_disk folder or data files) instead of the hub.")
@click.option("--workers", "-w", type=click.IntRange(min=1), help="Worker processes (default: all cores).")
@click.option("--vocab-size", type=click.IntRange(min=300), help="Tokenizer vocabulary (default: the recipe's).")
@click.option("--sequence-length", type=click.IntRange(min=8), help="Shard sequence length (default: the recipe's).")
@click.option("--quiet", "-q", is_flag=True)
def collect(name: str, output: str, max_samples: int | None, preset: str | None, local_path: str | None,
            workers: int | None, vocab_size: int | None, sequence_length: int | None, quiet: bool) -> None:
    """Run one catalog dataset through the default curation into shards."""
    from rich.console import Console

    from corpusforge.recipe import load_recipe
    from corpusforge.runner import run
    from corpusforge.sources.catalog import collect_recipe

    console = Console(stderr=True)
    overrides = {}
    if vocab_size:
        overrides["tokenizer"] = {"vocab_size": vocab_size}
    if sequence_length:
        overrides["sharding"] = {"sequence_length": sequence_length}
    try:
        recipe = load_recipe(collect_recipe(name, max_samples, preset, local_path, overrides))
        stats = run(recipe, output, workers=workers, progress=not quiet, console=console)
    except CorpusforgeError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    console.print(f"{name}: {stats['documents']['kept']:,} documents, {stats['tokens']:,} tokens -> {output}",
                  highlight=False)


COMMANDS = [datasets, collect]
