"""The one exception type for errors a user can cause.

The CLI prints an ``EdgeirstError`` as a single ``error: ...`` line and exits 2. Anything else
is a bug and propagates with its traceback. Messages say what was expected, what came, and
how to fix it.
"""


class EdgeirstError(Exception):
    """A user-caused error: missing file, bad dataset layout, corrupt model, unknown name."""


def missing_extra(package: str, extra: str) -> EdgeirstError:
    """The error raised when an optional dependency is not installed."""
    return EdgeirstError(
        f"{package} is not installed; install it with: pip install 'edgeirst[{extra}]'"
    )
