"""Subcommands of ``corpusforge`` beyond the core ones in ``cli.py``.

Every module here that defines ``COMMANDS`` (a list of click commands or groups) is added to the
``corpusforge`` group, so an area adds its commands without touching ``cli.py``.
"""
