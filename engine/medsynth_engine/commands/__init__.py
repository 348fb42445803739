"""Subcommands of ``medsynth``: one module each, with ``add_parser(subparsers)`` and ``run(args) -> int``.

To add a command, write ``commands/<name>.py`` and add its name to ``SUBCOMMANDS`` in ``cli.py``.
"""
