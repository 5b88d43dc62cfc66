"""The one exception type for errors a user can cause.

The CLI prints an ``EdgeirstError`` as a single ``error: ...`` line and exits 2, and an
``EdgeirstWarning`` as one ``warning: ...`` line. Anything else
is a bug and propagates with its traceback. Messages say what was expected, what came, and
how to fix it.
"""


class EdgeirstError(Exception):
    """A user-caused error: missing file, bad dataset layout, corrupt model, unknown name."""


class EdgeirstWarning(UserWarning):
    """Something a user should know that does not stop the work (data as it is in the wild: a
    mask saved at another resolution, a split whose masks are all empty). The CLI prints each as
    one ``warning: ...`` line, once per message."""


EXTRAS = ("train", "jetson", "plot", "test")  # pyproject's optional dependency groups


def missing_extra(package: str, extra: str) -> EdgeirstError:
    """The error raised when an optional dependency is not installed; ``extra`` is one of
    ``EXTRAS`` (a test keeps the two in step with pyproject.toml)."""
    if extra not in EXTRAS:
        raise ValueError(f"no extra {extra!r} in pyproject.toml")
    return EdgeirstError(
        f"{package} is not installed; install it with: pip install 'edgeirst[{extra}]'"
    )


def finite_number(value, what: str) -> float:
    """``value`` (a number or its text) as a finite float, or the EdgeirstError that names ``what``:
    the one check behind every float a user gives (options, URL parameters, ranges), since nan
    passes every comparison and inf passes every lower bound."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise EdgeirstError(f"{what}: {value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise EdgeirstError(f"{what}: {value!r} is not a finite number")
    return number
