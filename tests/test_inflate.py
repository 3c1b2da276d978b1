"""The faster inflate of the index's data path gives zlib's bytes, or zlib's error, for every input.

Every installed decoder is checked byte for byte against zlib: on streams made to be awkward (empty,
incompressible, stored, truncated, corrupt, with trailing bytes, with a wrong size hint), and on every chunk
of HDF5 files written the way the layouts write them (deflate and shuffle + deflate, edge chunks, constant
chunks, random chunks, chunks stored unfiltered through the filter mask). The same check runs over every
chunk of every layout of the study in ``test_study_layouts.py``.
"""

from __future__ import annotations

import subprocess
import sys
import zlib
from pathlib import Path

import h5py
import numcodecs
import numpy as np
import pytest

from nwb_cloud.refs import inflate
from nwb_cloud.refs.buffers import HUGE_PAGE_ADVICE_BYTES, BufferPool, new_buffer
from nwb_cloud.refs.inflate import DEFLATE, SHUFFLE_DEFLATE

INSTALLED = inflate.available()
RNG = np.random.default_rng(7)
RAW = (np.cumsum(RNG.integers(-40, 41, 60_000)) % 4000).astype("<i2").tobytes()  # a signal-like chunk


def zlib_answer(stream, size):
    """zlib's bytes, or zlib's exception type."""
    try:
        return zlib.decompress(stream, bufsize=max(size, 1))
    except zlib.error as error:
        return type(error)


def answer(inflater, stream, size):
    try:
        return bytes(inflater(stream, size))
    except zlib.error as error:
        return type(error)


def test_the_decoders_the_index_depends_on_are_installed():
    # libdeflate (alone and through imagecodecs, into pooled buffers) and ISA-L are dependencies of the index;
    # zlib is the reference they are checked against
    assert {"libdeflate-pooled", "libdeflate", "isal", "zlib"} <= set(INSTALLED)
    assert INSTALLED[-1] == "zlib" and INSTALLED[0] == "libdeflate-pooled"


def test_a_decoders_libraries_load_when_asked_not_with_the_decoder():
    # imagecodecs loads a codec's extension on the first use of its name: a read asks for it while its requests
    # are on the wire (test_refs_fetch), an open that decodes nothing never loads it
    script = (
        "import sys; from nwb_cloud.refs import inflate; inflate.raw('libdeflate-pooled'); "
        "print('imagecodecs._deflate' in sys.modules); inflate.load_libraries(); "
        "print('imagecodecs._deflate' in sys.modules)"
    )
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert loaded.split() == ["False", "True"]


def test_a_pooled_decode_never_overwrites_a_chunk_someone_still_holds():
    inflate_pooled = inflate.exact("libdeflate-pooled")
    streams = [zlib.compress(RNG.bytes(len(RAW)), 1) for _ in range(3)]
    plains = [zlib.decompress(s) for s in streams]
    first = inflate_pooled(streams[0], len(RAW))
    view = memoryview(first)[10:20]  # zarr keeps views of a chunk while it copies from it
    del first
    second = inflate_pooled(streams[1], len(RAW))
    assert bytes(view) == plains[0][10:20] and bytes(second) == plains[1]
    del view
    third = inflate_pooled(streams[2], len(RAW))  # the first buffer is free again: used, with the third's bytes
    assert bytes(third) == plains[2] and bytes(second) == plains[1]


def test_a_buffer_pool_hands_a_buffer_out_again_only_once_nothing_refers_to_it():
    pool = BufferPool(most_bytes=3 * 100)
    a = pool.take(100)
    assert pool.take(100) is not a  # a is held
    address = a.ctypes.data
    view = a[5:9]
    del a
    b = pool.take(100)
    assert b.ctypes.data != address  # a view still refers to the first buffer
    del view
    assert pool.take(100).ctypes.data == address  # now nothing does
    assert pool.take(50) is not None and pool.kept_bytes <= 3 * 100  # the rest is made, not kept
    assert new_buffer(0).size == 0 and new_buffer(7).flags.writeable


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads Linux's /proc/self/smaps")
def test_a_large_buffer_is_private_memory_without_huge_page_advice():
    """Shared anonymous memory is shmem (each first touch also enters its page cache), and numpy's own
    arrays of this size are advised into huge pages (a fault may wait for compaction): neither, here."""
    buffer = new_buffer(HUGE_PAGE_ADVICE_BYTES + 4096)
    buffer[::4096] = 1
    mapping = _mapping_of(buffer.ctypes.data + 8192)  # numpy advises from the first whole page on
    assert mapping["permissions"] == "rw-p", mapping  # private ("rw-s" would be shared)
    assert "hg" not in mapping["VmFlags"], mapping  # not advised into huge pages
    numpys = np.empty(HUGE_PAGE_ADVICE_BYTES + 4096, np.uint8)  # what the check tells apart
    assert "hg" in _mapping_of(numpys.ctypes.data + 8192)["VmFlags"]


def _mapping_of(address: int) -> dict:
    """The entry of /proc/self/smaps holding ``address``: its permissions and VmFlags."""
    found = None
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if "-" in head[0] and len(head) >= 5:  # a mapping's first line: range, permissions, offset, device, inode
            low, high = (int(x, 16) for x in head[0].split("-"))
            found = {"permissions": head[1], "VmFlags": []} if low <= address < high else None
        elif found is not None and head[0] == "VmFlags:":
            found["VmFlags"] = head[1:]
            return found
    raise AssertionError(f"no mapping of this process holds {address:#x}")


AWKWARD = {
    "level-4": zlib.compress(RAW, 4),
    "level-1": zlib.compress(RAW, 1),
    "level-9": zlib.compress(RAW, 9),
    "stored": zlib.compress(RAW, 0),
    "incompressible": zlib.compress(RNG.bytes(len(RAW)), 4),
    "constant": zlib.compress(bytes(len(RAW)), 4),
    "empty-stream": zlib.compress(b""),
    "no-bytes": b"",
    "trailing-bytes": zlib.compress(RAW, 4) + b"\x00\x01\x02\x03",  # fletcher32's checksum, when dropped
    "two-streams": zlib.compress(RAW, 4) + zlib.compress(b"other"),
    "truncated": zlib.compress(RAW, 4)[:-9],
    "corrupt-adler32": zlib.compress(RAW, 4)[:-1] + b"\x00",
    "corrupt-body": zlib.compress(RAW, 4)[:100] + b"\xff" * 50 + zlib.compress(RAW, 4)[150:],
    "raw-deflate-no-header": zlib.compress(RAW, 4)[2:-4],
    "not-zlib": RAW[:1000],
}


@pytest.mark.parametrize("name", INSTALLED)
@pytest.mark.parametrize("case", AWKWARD)
@pytest.mark.parametrize("hint", ["exact", "small", "large", "zero"])
def test_every_decoder_answers_exactly_what_zlib_answers(name, case, hint):
    stream = AWKWARD[case]
    size = {"exact": len(RAW), "small": len(RAW) // 3, "large": 2 * len(RAW), "zero": 0}[hint]
    for data in (stream, memoryview(bytearray(stream)), bytearray(stream)):  # the data path hands memoryviews
        assert answer(inflate.exact(name), data, size) == zlib_answer(stream, size)


def write_chunks(path, data, chunks, **filters):
    with h5py.File(path, "w") as file:
        file.create_dataset("x", data=data, chunks=chunks, **filters)


def stored_chunks(path):
    """(filter mask, stored bytes, chunk nbytes) of every chunk of dataset ``x``."""
    with h5py.File(path, "r") as file:
        dataset = file["x"]
        nbytes = int(np.prod(dataset.chunks)) * dataset.dtype.itemsize
        for index in range(dataset.id.get_num_chunks()):
            info = dataset.id.get_chunk_info(index)
            mask, stored = dataset.id.read_direct_chunk(info.chunk_offset)
            yield mask, stored, nbytes, dataset.dtype.itemsize


FILES = {
    # signal-like int16 with edge chunks (the last row of chunks is partial)
    "deflate-edges": (np.cumsum(RNG.integers(-9, 10, (1000, 37)), axis=0).astype("<i2"), (300, 16), {}),
    "shuffle-deflate": (np.cumsum(RNG.integers(-9, 10, (1000, 37)), axis=0).astype("<i2"), (256, 37),
                        {"shuffle": True}),
    "random-uint16": (RNG.integers(0, 2**16, (64, 64, 64), dtype="<u2"), (16, 64, 64), {}),
    "random-shuffled-float64": (RNG.standard_normal((20_000,)), (4096,), {"shuffle": True}),
    "constant": (np.zeros((4096, 8), "<u2"), (1024, 8), {"shuffle": True}),
    "level-9": (np.arange(50_000, dtype="<i4") // 7, (10_000,), {"compression_opts": 9}),
}  # fmt: skip


@pytest.mark.parametrize("case", FILES)
def test_every_chunk_of_hdf5s_deflate_filter_decodes_to_zlibs_bytes(tmp_path, case):
    data, chunks, options = FILES[case]
    path = tmp_path / f"{case}.h5"
    write_chunks(path, data, chunks, compression="gzip", **{"compression_opts": 4, **options})
    codec = SHUFFLE_DEFLATE if options.get("shuffle") else DEFLATE
    count = 0
    for mask, stored, nbytes, itemsize in stored_chunks(path):
        assert mask == 0
        for name in INSTALLED:
            assert answer(inflate.exact(name), stored, nbytes) == zlib.decompress(stored), name
        if codec == SHUFFLE_DEFLATE:  # and the pair: inflate then unshuffle, as the data path runs it
            unshuffled = numcodecs.Shuffle(elementsize=itemsize).decode(
                inflate.decoder_for(codec, nbytes)(stored, nbytes)
            )
            assert bytes(unshuffled) == bytes(numcodecs.Shuffle(elementsize=itemsize).decode(zlib.decompress(stored)))
        count += 1
    assert count >= 2


def test_a_chunk_stored_unfiltered_through_the_filter_mask_gets_zlibs_answer(tmp_path):
    """HDF5 skips an optional filter that fails and marks the chunk in its filter mask: the stored bytes are the
    raw chunk. Whatever the data path then hands the decoder, its answer is zlib's (here: zlib's error)."""
    path = tmp_path / "masked.h5"
    data = np.arange(4096, dtype="<i2").reshape(512, 8)
    with h5py.File(path, "w") as file:
        dataset = file.create_dataset("x", shape=data.shape, dtype=data.dtype, chunks=(256, 8), compression="gzip")
        dataset.id.write_direct_chunk((0, 0), zlib.compress(data[:256].tobytes(), 4), filter_mask=0)
        dataset.id.write_direct_chunk((256, 0), data[256:].tobytes(), filter_mask=1)  # deflate skipped
    with h5py.File(path, "r") as file:
        np.testing.assert_array_equal(file["x"][...], data)  # HDF5 itself reads both
    masks = []
    for mask, stored, nbytes, _ in stored_chunks(path):
        masks.append(mask)
        for name in INSTALLED:
            assert answer(inflate.exact(name), stored, nbytes) == zlib_answer(stored, nbytes)
    assert masks == [0, 1]


# -- the measured choice ---------------------------------------------------------------------------------------
def row(decoder, size, speed, codec=DEFLATE, exact=True):
    return {"decoder": decoder, "codec": codec, "chunk_bytes": size, "output_mb_per_cpu_s": speed, "exact": exact}


def test_the_choice_is_the_fastest_exact_decoder_at_the_nearest_measured_size():
    table = [
        row("isal", 100_000, 900), row("libdeflate", 100_000, 500),
        row("isal", 10_000_000, 400), row("libdeflate", 10_000_000, 700),
        row("libdeflate", 1_000_000, 9000, exact=False),  # never chosen: not exact
        row("isal", 1_000_000, 100, codec=SHUFFLE_DEFLATE), row("zlib", 1_000_000, 200, codec=SHUFFLE_DEFLATE),
    ]  # fmt: skip
    assert inflate.choose(DEFLATE, 120_000, table) == "isal"
    assert inflate.choose(DEFLATE, 8_000_000, table) == "libdeflate"
    assert inflate.choose(DEFLATE, 1_000_000, table) in ("isal", "libdeflate")  # nearest is only exact rows' sizes
    assert inflate.choose(SHUFFLE_DEFLATE, 5_000_000, table) == "zlib"
    # no table (or no row for the codec): the ranking the table gave on this machine
    assert inflate.choose(DEFLATE, 1_000_000, []) == INSTALLED[0]
    assert inflate.choose("other", 1_000_000, table) == INSTALLED[0]


def test_a_table_used_by_the_process_drives_what_the_data_path_decodes_with():
    try:
        inflate.use_table([row("isal", 1_000_000, 900), row("libdeflate", 1_000_000, 100)])
        assert inflate.decoder_for(DEFLATE, 1_000_000).decoder == "isal"
    finally:
        inflate.use_table(None)
    assert inflate.decoder_for(DEFLATE, 1_000_000).decoder == INSTALLED[0]


@pytest.mark.parametrize("name", INSTALLED)
def test_a_speed_row_says_how_fast_and_whether_exact(name):
    measured = inflate.speed(name, AWKWARD["level-4"], len(RAW), repeats=2)
    assert measured["exact"] and measured["installed"] and measured["output_mb_per_cpu_s"] > 0
    assert measured["chunk_bytes"] == len(RAW) and measured["stored_bytes"] == len(AWKWARD["level-4"])
    assert measured["codec"] == DEFLATE and measured["decoder"] == name


def test_an_unknown_or_missing_decoder_is_named():
    with pytest.raises(KeyError, match="unknown decoder 'gzip'"):
        inflate.raw("gzip")


def test_a_saved_table_is_loaded_for_the_versions_installed_only(tmp_path):
    rows = [inflate.speed(name, AWKWARD["level-4"], len(RAW), repeats=1) for name in INSTALLED]
    path = inflate.save_table(tmp_path / inflate.TABLE_FILE, rows)
    assert inflate.load_table(path) == rows and all(r["version"] for r in rows)
    stale = [{**rows[0], "version": "0.0.1"}, *rows[1:]]  # measured before an upgrade: not this code's figure
    inflate.save_table(path, stale)
    assert inflate.load_table(path) == rows[1:]
    assert inflate.load_table(tmp_path / "missing.json") is None
    (tmp_path / "corrupt.json").write_text("{")
    assert inflate.load_table(tmp_path / "corrupt.json") is None


def test_loading_a_table_looks_each_decoders_version_up_once(tmp_path, monkeypatch):
    """A lookup reads installed packages' metadata (~0.5 ms); the table has a row per decoder, codec, size and
    signal (60), and it is loaded in every cold open, so a version is looked up once per process."""
    import importlib.metadata

    rows = [{**r, "chunk_bytes": size} for size in (1, 2, 3, 4) for r in
            (inflate.speed(name, AWKWARD["level-4"], len(RAW), repeats=1) for name in INSTALLED)]  # fmt: skip
    path = inflate.save_table(tmp_path / inflate.TABLE_FILE, rows)
    looked_up = []
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: looked_up.append(name) or real(name))
    inflate.version.cache_clear()
    try:
        assert inflate.load_table(path) == rows
        assert sorted(looked_up) == sorted({inflate.DECODERS[n].distribution for n in INSTALLED} - {""})
    finally:
        inflate.version.cache_clear()


def test_the_index_chooses_from_the_table_in_its_data_directory(tmp_path):
    from nwb_cloud.access import nwb_index

    table = [row("isal", 1_000_000, 900), row("libdeflate", 1_000_000, 100)]
    for entry in table:
        entry["version"] = inflate.version(entry["decoder"])
    inflate.save_table(tmp_path / inflate.TABLE_FILE, table)
    before = nwb_index._config
    try:
        nwb_index.configure(decoder_table=tmp_path / inflate.TABLE_FILE)
        nwb_index.use_decoder_table()
        assert inflate.decoder_for(DEFLATE, 1_000_000).decoder == "isal"
    finally:
        nwb_index._config = before
        nwb_index._table_used = None
        inflate.use_table(None)
