"""A rich progress bar for index builds: the ``progress(done, total)`` callback :func:`build_index` takes."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


@contextlib.contextmanager
def progress_bar(description: str, stream=None) -> Iterator[Callable[[int, int], None]]:
    """A callback that draws HDF5 objects translated out of the file's total, on ``stream`` (stderr)."""
    console = Console(file=stream or sys.stderr)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
