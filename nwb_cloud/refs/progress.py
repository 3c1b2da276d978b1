"""A rich progress bar for index builds: the ``progress(done, total)`` callback :func:`build_index` takes.

The bar appears with the first object translated, so a build that fails on opening the file (not HDF5,
no such object) prints nothing but its error.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


@contextlib.contextmanager
def progress_bar(description: str, stream=None) -> Iterator[Callable[[int, int], None]]:
    """A callback that draws HDF5 objects translated out of the file's total, on ``stream`` (stderr)."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    bar = Progress(*columns, console=Console(file=stream or sys.stderr))
    task = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task(description, total=total)
        bar.update(task, completed=done, total=total)

    try:
        yield update
    finally:
        if task is not None:
            bar.stop()
