"""``corpusforge card OUTPUT``: (re)write an output's data card and HTML report from its files."""

from __future__ import annotations

import sys

import click

from corpusforge import layout as layout_names
from corpusforge.commands.output_folder import output_folder
from corpusforge.errors import CorpusforgeError

# What a card is built from and what it writes: all an fsspec output's copy needs (no shards, no _work).
CARD_INPUTS = (layout_names.STATS, layout_names.INDEX, layout_names.DOCUMENTS_INDEX, layout_names.RECIPE, f"{layout_names.DOCUMENTS}/", f"{layout_names.LINEAGE}/",
               layout_names.CARD, layout_names.REPORT)


@click.command()
@click.argument("output")
def card(output: str) -> None:
    """Rewrite OUTPUT/README.md (Hugging Face data card) and OUTPUT/report.html from stats.json,
    shard_index.json and recipe.yaml, e.g. after a command changed the output. OUTPUT is a folder
    or an fsspec URL (s3://bucket/run), whose two files are written back to the store."""
    from corpusforge.observe.card import CARD_NAME, write_card
    from corpusforge.observe.html_report import REPORT_NAME
    from corpusforge.runner import output_lock

    try:
        with output_lock(output, "card", create=False), \
                output_folder(output, only=CARD_INPUTS, write=True) as folder:  # not while a run writes it
            write_card(folder)
    except CorpusforgeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    where = output.rstrip("/")
    click.echo(f"card:   {where}/{CARD_NAME}\nreport: {where}/{REPORT_NAME}")


COMMANDS = [card]
