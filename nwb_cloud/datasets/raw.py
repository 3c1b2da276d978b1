"""A generated signal materialised once as a raw ``.npy`` on disk, then memory-mapped for every layout.

Generating a full-size recording costs minutes of CPU; writing it in a dozen layouts would repeat that a
dozen times. The raw file is written block by block (never whole in memory) under a temporary name and
renamed when complete, so an interrupted run leaves nothing that looks finished.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
from rich.progress import BarColumn, Progress, TimeRemainingColumn

from nwb_cloud.datasets.signals import Signal


class RawSignal(Signal):
    """A signal read from a memory-mapped ``.npy``: same shape, dtype and values as the generator's."""

    def __init__(self, path: Path, like: Signal):
        self.path = Path(path)
        self.array = np.load(self.path, mmap_mode="r")
        if self.array.shape != like.shape or self.array.dtype != like.dtype:
            raise ValueError(f"{self.path} holds {self.array.dtype}{self.array.shape}, expected {like.shape}")
        self.shape, self.dtype, self.block = like.shape, like.dtype, like.block
        self.spec, self.seed = like.spec, like.seed
        for name in ("conversion",):
            if hasattr(like, name):
                setattr(self, name, getattr(like, name))

    def read(self, start: int, stop: int) -> np.ndarray:
        return np.array(self.array[max(0, start) : min(stop, self.shape[0])])


def materialize(source: Signal, path: Path, progress: bool = False) -> RawSignal:
    """The raw copy of ``source`` at ``path`` (written if missing)."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial.npy")
        try:
            out = np.lib.format.open_memmap(partial, mode="w+", dtype=source.dtype, shape=source.shape)
            step = source.block * max(1, (64 * 2**20) // max(1, source.block * out[0].nbytes))
            columns = ("[progress.description]{task.description}", BarColumn(), TimeRemainingColumn())
            with Progress(*columns, disable=not progress, transient=True) as bar:
                task = bar.add_task(f"generate {path.stem}", total=source.shape[0])
                for start in range(0, source.shape[0], step):
                    block = source.read(start, start + step)
                    out[start : start + len(block)] = block
                    bar.advance(task, len(block))
            out.flush()
            del out
            partial.replace(path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
            raise
    return RawSignal(path, source)
