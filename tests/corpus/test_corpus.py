"""Every corpus file through the index: exact at both levels, or refused at build with a named reason.

Exact means: the raw tree (every group, dataset, attribute and link, with values and the types that carry
them) equals an independent walk of the file with h5py, and for NWB files every builder and every pynwb
object equals ``NWBHDF5IO``'s. The counts of outcomes are printed at the end of the run (conftest).
"""

from __future__ import annotations

import h5py
import pytest
import zarr
from pynwb import NWBHDF5IO

from nwb_cloud.refs import RefsError, Unrepresentable, build_index, open_zarr_io
from nwb_cloud.refs.compare import compare_ios, compare_raw
from nwb_cloud.refs.handle import IndexHandle
from nwb_cloud.refs.local import FileReader
from tests.corpus.cases import CASES

READABLE = [name for name, case in CASES.items() if case.refused is None]


@pytest.mark.parametrize("name", list(CASES))
def test_a_corpus_file_reads_exactly_or_is_refused_by_name(name, corpus_file, corpus_outcomes):
    case, path = CASES[name], corpus_file(name)
    if case.refused is not None:
        with pytest.raises(Unrepresentable, match=case.refused) as refused:
            build_index(path)
        corpus_outcomes[name] = f"refused: {refused.value}"
        return
    index = build_index(path)
    found = compare_raw(path, index)
    assert not found, f"{len(found)} raw difference(s):\n" + "\n".join(found)
    if case.reference_fails is not None:
        with NWBHDF5IO(path, "r") as expected, pytest.raises(Exception, match=case.reference_fails) as failed:
            expected.read()
        with open_zarr_io(index) as actual:
            actual.read()  # pynwb through the index reads it: the raw tree above is exact
        corpus_outcomes[name] = f"exact where NWBHDF5IO fails: {type(failed.value).__name__}: {failed.value}"
        return
    if case.nwb:
        with NWBHDF5IO(path, "r") as expected, open_zarr_io(index) as actual:
            found = compare_ios(expected, actual)
        assert not found, f"{len(found)} difference(s) from NWBHDF5IO:\n" + "\n".join(found)
    corpus_outcomes[name] = "exact"


def _walk(index, path) -> int:
    """Read every array of the index whole, through the nwb-index store; returns how many were read."""
    count = 0
    with IndexHandle(index, FileReader(path)) as handle:
        root = zarr.open(handle.store, mode="r")
        for _, array in root.arrays(recurse=True):
            array[...]
            count += 1
    return count


@pytest.mark.parametrize("name", READABLE)
def test_every_dataset_reads_and_a_corrupt_chunk_is_a_named_error(name, corpus_file, tmp_path):
    """Every dataset of the file reads through the index; with every stored chunk's bytes flipped, each read
    either still returns (a chunk with no checksum or codec to notice) or raises a RefsError naming it."""
    path = corpus_file(name)
    index = build_index(path, inline_threshold=0)  # every chunk a byte range of the file, so each is corrupted
    with h5py.File(path, "r") as file:
        datasets = []
        file.visititems(lambda name, obj: datasets.append(name) if isinstance(obj, h5py.Dataset) else None)
    assert _walk(index, path) == len(datasets)
    corrupt = tmp_path / path.name
    data = bytearray(path.read_bytes())
    for value in index["refs"].values():
        if isinstance(value, list) and len(value) == 3:
            _, offset, size = value
            data[offset : offset + size] = bytes(b ^ 0x5A for b in data[offset : offset + size])
    corrupt.write_bytes(bytes(data))
    with IndexHandle(index, FileReader(corrupt)) as handle:
        root = zarr.open(handle.store, mode="r")
        for array_path, array in root.arrays(recurse=True):
            try:
                array[...]
            except RefsError as error:
                assert array.path in str(error), error
            except Exception as error:  # noqa: BLE001 - the point of the test
                pytest.fail(f"{array_path}: {type(error).__name__}: {error} (not a named error)")
