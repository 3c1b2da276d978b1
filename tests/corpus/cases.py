"""Every corpus file: where it comes from and what the index must do with it (read exactly, or refuse why)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.corpus import extension_file, hdf5_files, neuroconv_files, pynwb_files

BACK_COMPAT = Path(__file__).parent.parent / "data" / "pynwb-back-compat"


@dataclass(frozen=True)
class Case:
    make: Callable[[Path], Path]  # writes the file into a folder (or returns a committed one)
    nwb: bool  # compared with NWBHDF5IO too (builders and pynwb objects), not only with h5py
    refused: str | None = None  # the refusal's message (a regular expression) when the index refuses it
    reference_fails: str | None = None  # NWBHDF5IO's own error (a regular expression) when it cannot read it
    source: str = ""


def _committed(path: Path) -> Callable[[Path], Path]:
    return lambda folder: path


def _written(writer, suffix: str) -> Callable[[Path], Path]:
    return lambda folder: writer(folder / f"file{suffix}")


CASES: dict[str, Case] = {}
for path in sorted(BACK_COMPAT.glob("*.nwb")):
    CASES[f"pynwb-back-compat/{path.stem}"] = Case(_committed(path), nwb=True, source="pynwb 1.0.2-3.0.0")
for name, writer in pynwb_files.WRITERS.items():
    CASES[name] = Case(_written(writer, ".nwb"), nwb=True, source="pynwb.testing.mock")
for name, (writer, error) in pynwb_files.REFERENCE_FAILS.items():
    CASES[name] = Case(_written(writer, ".nwb"), nwb=True, reference_fails=error, source="pynwb, then h5py")
for name, writer in neuroconv_files.WRITERS.items():
    CASES[name] = Case(_written(writer, ".nwb"), nwb=True, source="NeuroConv mock interfaces, default backend")
for name, writer in extension_file.WRITERS.items():
    CASES[name] = Case(_written(writer, ".nwb"), nwb=True, source="pynwb with a cached extension spec")
for name, writer in hdf5_files.WRITERS.items():
    CASES[name] = Case(_written(writer, ".h5"), nwb=False, source="h5py")
for name, (writer, refused) in hdf5_files.REFUSED.items():
    CASES[name] = Case(_written(writer, ".h5"), nwb=False, refused=refused, source="h5py")
