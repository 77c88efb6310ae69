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
@click.argument("dataset", required=False)
@click.option("--dataset", "-d", "name", help="A name from `corpusforge datasets` (or give it as DATASET).")
@click.option("--output", "-o", type=click.Path(file_okay=False),
              help="Output folder (default: ./collect-DATASET).")
@click.option("--max-samples", "-n", type=click.IntRange(min=1), help="Read at most this many records.")
@click.option("--preset", type=click.Choice(["small", "production", "multimodal"]), help="Recipe preset.")
@click.option("--local-path", type=click.Path(exists=True),
              help="A local copy (datasets.save_to_disk folder or data files) instead of the hub.")
@click.option("--workers", "-w", type=click.IntRange(min=1), help="Worker processes (default: all cores).")
@click.option("--vocab-size", type=click.IntRange(min=300), help="Tokenizer vocabulary (default: the recipe's).")
@click.option("--sequence-length", type=click.IntRange(min=8), help="Shard sequence length (default: the recipe's).")
@click.option("--quiet", "-q", is_flag=True)
def collect(dataset: str | None, name: str | None, output: str | None, max_samples: int | None, preset: str | None, local_path: str | None,
            workers: int | None, vocab_size: int | None, sequence_length: int | None, quiet: bool) -> None:
    """Run the catalog dataset DATASET (or --dataset) through the default curation into shards."""
    from rich.console import Console
    from rich.markup import escape

    from corpusforge.errors import AccessError
    from corpusforge.recipe import load_recipe
    from corpusforge.runner import run
    from corpusforge.sources.catalog import collect_recipe
    from corpusforge.sources.hf import USE_LOCAL_COPY

    if dataset and name and dataset != name:
        raise click.UsageError(f"two datasets given: {dataset!r} and --dataset {name!r}")
    name = dataset or name
    if not name:
        raise click.UsageError("name a dataset from `corpusforge datasets`: corpusforge collect NAME")
    output = output or f"collect-{name}"
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
        # The hub hint names the recipe option; here the copy is given with --local-path.
        msg = str(exc).replace(USE_LOCAL_COPY, f"then run again with --local-path DIR: corpusforge collect {name} "
                               "--local-path DIR")
        console.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
        sys.exit(1 if isinstance(exc, AccessError) else 2)
    console.print(f"{name}: {stats['documents']['kept']:,} documents, {stats['tokens']:,} tokens -> {output}",
                  highlight=False)


COMMANDS = [datasets, collect]
