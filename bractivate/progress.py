"""Progress of long work (a search's evaluations, a training's epochs): a bar with the count done,
the best score so far and the time remaining when the output is a terminal; plain log lines
otherwise (workflow logs, CI), one per step, with the same numbers.

This module imports neither Keras nor a framework: the command line sets its threads first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time

log = logging.getLogger("bractivate.progress")


def is_terminal(stream) -> bool:
    """Whether ``stream`` is a terminal (a closed or odd stream counts as not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _columns(stream) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 0


def format_seconds(seconds: float) -> str:
    """``h:mm:ss`` (``m:ss`` under an hour); ``?`` while unknown."""
    if seconds != seconds or seconds < 0 or seconds == float("inf"):  # NaN, negative, infinite
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """``total`` steps of ``unit`` (evaluation, epoch), ``initial`` of them done before (a resumed
    search). Call :meth:`step` after each one with the count done, the best so far and a detail
    line; :meth:`close` at the end. Use it as a context manager."""

    def __init__(self, total: int, unit: str, desc: str, initial: int = 0, stream=None):
        self.total, self.unit, self.desc = int(total), unit, desc
        self.initial = self.done = int(initial)
        self.stream = sys.stderr if stream is None else stream
        self.started = time.monotonic()
        self.bar = None
        self._redirect = contextlib.ExitStack()
        if is_terminal(self.stream):
            from tqdm import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            sized = _columns(self.stream) > 0  # a terminal that reports no size (a bare pty) gets 100
            self.bar = tqdm(total=self.total, initial=self.initial, unit=unit, desc=desc, file=self.stream,
                            dynamic_ncols=sized, ncols=None if sized else 100, nrows=None if sized else 24,
                            smoothing=0.3, leave=True)
            # Log lines print above the bar instead of through it.
            self._redirect.enter_context(logging_redirect_tqdm())

    def remaining(self) -> float:
        """Seconds left at the mean pace of the steps done in this run (NaN before the first)."""
        ran = self.done - self.initial
        if ran <= 0:
            return float("nan")
        return (time.monotonic() - self.started) / ran * max(0, self.total - self.done)

    def step(self, done: int, best: str, detail: str = "") -> None:
        """``done`` steps of ``total`` are finished; ``best`` is the best so far (``score 0.12``)."""
        if done < self.done and self.bar is not None:  # a search that started afresh after all
            self.bar.reset(self.total)
            self.initial, self.started = 0, time.monotonic()
        self.done = done
        if self.bar is not None:
            if detail:
                log.info("%s", detail)
            self.bar.n = done
            self.bar.set_postfix_str(f"best {best}", refresh=False)
            self.bar.refresh()
        else:
            log.info("%s %d/%d, best %s, %s remaining%s", self.unit, done, self.total, best,
                     format_seconds(self.remaining()), f": {detail}" if detail else "")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self._redirect.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
