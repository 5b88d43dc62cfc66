"""Progress of anything that takes more than a second, the one way every command shows it.

On a terminal, a tqdm bar. Anywhere else (a log file, CI, a pipe) a bar redrawn with carriage
returns is one unreadable line, so ``progress_bar`` gives plain lines instead: one at the start,
one every tenth of the total, one every 30 s, one at the end. Both are tqdm objects (``update``,
``set_postfix``, ``set_description``, iteration, ``tqdm.write``), so callers do not care which.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from tqdm import tqdm

STEPS = 10  # plain lines: one every 1/STEPS of the total...
EVERY_S = 30.0  # ...and one every EVERY_S seconds


class PlainProgress(tqdm):
    """tqdm's counting and rates, printed as whole lines (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._line_step, self._line_t, self._line_n = -2, 0.0, None  # -2: the first display prints
        kwargs.setdefault("mininterval", 1.0)
        super().__init__(*args, **kwargs)

    def _line(self) -> None:
        self.fp.write(self.format_meter(**{**self.format_dict, "ncols": 0}).strip() + "\n")
        self.fp.flush()
        self._line_t, self._line_n = time.monotonic(), self.n

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if msg is not None:  # tqdm clearing or overwriting its bar: nothing to clear here
            return False
        step = int(STEPS * self.n / self.total) if self.total else -1
        if step > self._line_step or time.monotonic() - self._line_t >= EVERY_S:
            self._line_step = step
            self._line()
        return True

    def close(self) -> None:
        if not self.disable and self._line_n != self.n:
            self._line()  # where it ended
        self.leave = False  # no bar to leave behind, no newline to add
        super().close()


def progress_bar(iterable: Any = None, **kwargs: Any) -> tqdm:
    """``tqdm(iterable, **kwargs)`` on a terminal, ``PlainProgress`` elsewhere; output goes to
    stderr unless ``file`` says otherwise."""
    kwargs.setdefault("file", sys.stderr)
    isatty = getattr(kwargs["file"], "isatty", None)
    cls = tqdm if isatty is not None and isatty() else PlainProgress
    return cls(iterable, **kwargs)


__all__ = ["PlainProgress", "progress_bar"]
