"""Commands whose issue has not landed yet: they exist, say so, and exit 2."""

import click

from edgeirst.errors import EdgeirstError


def make(name: str, help_text: str) -> click.Command:
    @click.command(name=name, help=help_text, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def later(args: tuple[str, ...]) -> None:
        raise EdgeirstError(f"`edgeirst {name}` is not available yet in this version")

    return later


command = None
