"""The `wabulk` command (and `python -m wabulk`): the command-line interface, imported on run.

The command's script imports only this module. A big import's reader process starts by
running the parent's main script again (multiprocessing's spawn): with the whole CLI
imported there (Flask, SQLAlchemy, the models: ~0.3 s and ~40 MB), every import through the
CLI or the web server waited that much longer for its first rows.
"""

from __future__ import annotations


def main() -> None:
    from .cli import main as cli

    cli()


if __name__ == "__main__":
    main()
