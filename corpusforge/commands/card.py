"""``corpusforge card OUTPUT``: (re)write an output's data card and HTML report from its files."""

from __future__ import annotations

import sys

import click

from corpusforge.errors import CorpusforgeError


@click.command()
@click.argument("output", type=click.Path(exists=True, file_okay=False))
def card(output: str) -> None:
    """Rewrite OUTPUT/README.md (Hugging Face data card) and OUTPUT/report.html from stats.json,
    shard_index.json and recipe.yaml, e.g. after a command changed the output."""
    from pathlib import Path

    from corpusforge.observe.card import write_card
    from corpusforge.observe.html_report import REPORT_NAME
    from corpusforge.state import OutputLock

    try:
        with OutputLock(Path(output).resolve(), "card", create=False):  # not while a run writes the output
            path = write_card(output)
    except CorpusforgeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"card:   {path}\nreport: {Path(output) / REPORT_NAME}")


COMMANDS = [card]
