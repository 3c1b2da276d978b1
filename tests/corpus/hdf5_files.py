"""HDF5 files made with h5py alone: every storage feature an NWB writer may use, and the ones the index refuses.

These are compared at the raw level (h5py against the index, no hdmf). Each writer takes a path.
"""

from __future__ import annotations

import h5py
import hdf5plugin
import numpy as np

RNG = np.random.default_rng(1)
NOISE = RNG.integers(0, 256, 60_000).astype("u1")  # incompressible: an optional filter is skipped for it


def storage_file(path):
    """Empty, scalar, big-endian, fill values, contiguous, compact, unwritten and every decodable filter."""
    values = RNG.integers(-1000, 1000, 50_000).astype("i2")
    with h5py.File(path, "w") as f:
        f.create_dataset("empty_3d", shape=(0, 0, 0), dtype="f4")
        f.create_dataset("empty_chunked", shape=(0, 4), maxshape=(None, 4), chunks=(16, 4), dtype="i8")
        f.create_dataset("empty_strings", shape=(0,), dtype=h5py.string_dtype())
        f.create_dataset("scalar_float", data=2.5)
        f.create_dataset("scalar_int_be", data=np.array(7, dtype=">i4"))
        f.create_dataset("scalar_bool", data=np.bool_(True))
        f.create_dataset("scalar_text", data="µ text")
        f.create_dataset("scalar_fixed", data=np.bytes_(b"fixed"))
        f.create_dataset("big_endian", data=values.astype(">f8"), chunks=(5_000,))
        f.create_dataset("contiguous", data=values)
        f.create_dataset("compact", data=np.arange(10, dtype="u2"), chunks=None,
                         **{})  # fmt: skip
        f.create_dataset("never_written", shape=(1000,), dtype="f4", fillvalue=-1.5)
        sparse = f.create_dataset("sparse", shape=(100_000,), dtype="f4", chunks=(10_000,), fillvalue=np.nan)
        sparse[40_000:45_000] = 2.0
        f.create_dataset("gzip_shuffle", data=values, chunks=(7_000,), compression="gzip", shuffle=True)
        f.create_dataset("fletcher32", data=values, chunks=(7_000,), fletcher32=True, compression="gzip")
        f.create_dataset("lzf", data=values, chunks=(7_000,), compression="lzf")
        f.create_dataset("zstd", data=values, chunks=(7_000,), **hdf5plugin.Zstd(clevel=3))
        f.create_dataset("blosc", data=values, chunks=(7_000,), **hdf5plugin.Blosc(cname="lz4", clevel=5))
        f.create_dataset("bool", data=RNG.integers(0, 2, 100).astype(bool), chunks=(30,), compression="gzip")
        f.create_dataset("complex", data=(values[:100] + 1j).astype("c16"))
        f.create_dataset("fixed_strings", data=np.array([b"ab", b"\xb5V", b""]))
        f.create_dataset("vlen_utf8", data=["a", "µ", ""], dtype=h5py.string_dtype())
        f.create_dataset("vlen_ascii", data=[b"a", b"\xb5V"], dtype=h5py.string_dtype("ascii"))
        f.create_dataset("two_d", data=values[:40_000].reshape(200, 200), chunks=(64, 48), compression="gzip")
        mixed = np.concatenate([np.zeros(60_000, "u1"), NOISE])  # half compressible, half not
        f.create_dataset("lzf_unfiltered_chunks", data=mixed, chunks=(20_000,), compression="lzf", shuffle=True)
        f.create_dataset("lzf_all_unfiltered", data=NOISE, chunks=(20_000,), compression="lzf")
        packed = np.dtype([("x", "<u4"), ("y", "<u4"), ("weight", "<f4")])
        f.create_dataset("compound_packed", data=np.array([(1, 2, 0.5), (3, 4, 1.0)], dtype=packed), chunks=(2,))
        padded = np.dtype({"names": ["a", "b"], "formats": ["<i2", "<f8"], "offsets": [0, 8], "itemsize": 16})
        f.create_dataset("compound_padded", data=np.array([(1, 2.0), (3, 4.0)], dtype=padded))
        f.create_dataset("compound_scalar", data=np.array((1, 2, 0.5), dtype=packed))
        f.create_dataset("compound_empty", shape=(0,), dtype=packed)
    return path


def attributes_file(path):
    """Every kind of attribute value h5py returns."""
    with h5py.File(path, "w") as f:
        g = f.create_group("g")
        attrs = g.attrs
        attrs["vlen_utf8"] = "µV"
        attrs.create("vlen_ascii", "uV", dtype=h5py.string_dtype("ascii"))
        attrs.create("vlen_latin1", b"\xb5V", dtype=h5py.string_dtype("ascii"))
        attrs.create("fixed_ascii", np.bytes_(b"uV"))
        attrs.create("fixed_latin1", np.bytes_(b"\xb5V"))
        attrs["float64"] = 1.5
        attrs["float32"] = np.float32(0.1)
        attrs["int32"] = np.int32(-3)
        attrs["uint8"] = np.uint8(200)
        attrs["bool"] = True
        attrs["nan"] = np.nan
        attrs["inf"] = -np.inf
        attrs["int_array"] = np.arange(3)
        attrs["float_array_be"] = np.array([1.5, np.nan], dtype=">f8")
        attrs["one_element"] = np.array([1.0])
        attrs["empty_array"] = np.array([], dtype="i4")
        attrs["two_d"] = np.arange(6, dtype="i2").reshape(2, 3)
        attrs["text_array"] = ["a", "µ"]
        attrs.create("ascii_array", [b"a", b"b"], dtype=h5py.string_dtype("ascii"))
        attrs["fixed_array"] = np.array([b"ab", b"c"])
        attrs["complex"] = np.complex128(1 + 2j)
        attrs["compound"] = np.array([(1, 2.5)], dtype=[("a", "<i4"), ("b", "<f8")])
        attrs["null"] = h5py.Empty("f4")
        attrs["reference"] = f.ref
        d = f.create_dataset("d", data=np.arange(10))
        attrs["region"] = d.regionref[2:5]
    return path


def links_file(path):
    """Soft links, a second hard link, references to either path, region references (hyperslab and points)."""
    with h5py.File(path, "w") as f:
        group = f.create_group("g")
        data = group.create_dataset("d", data=np.arange(20).reshape(4, 5))
        f["hard"] = group  # a second hard link to the group
        f["soft"] = h5py.SoftLink("/g/d")
        f.attrs["through_hard_link"] = f["hard/d"].ref
        f.create_dataset("refs", data=[group.ref, data.ref, f.ref], dtype=h5py.ref_dtype)
        space = data.id.get_space()
        space.select_elements(np.array([[0, 1], [3, 4], [2, 2]]))
        points = h5py.h5r.create(f.id, b"/g/d", h5py.h5r.DATASET_REGION, space)
        f.create_dataset("regions", data=[data.regionref[1:3, 0:2], data.regionref[:, 4], points],
                         dtype=h5py.regionref_dtype)  # fmt: skip
        table = np.dtype([("start", "<i4"), ("count", "<i4"), ("target", h5py.ref_dtype)])
        f.create_dataset("table", data=np.array([(0, 2, data.ref), (2, 1, group.ref)], dtype=table))
    return path


# -- what the index refuses, each with the reason a test asserts ---------------------------------------------
def _null_dataspace(path):
    with h5py.File(path, "w") as f:
        f.create_dataset("null", data=h5py.Empty("f8"))
    return path


def external_links_file(path):
    """External links to a dataset and a group of a file beside it (read through that file's own index)."""
    with h5py.File(path.with_name("target.h5"), "w") as f:
        f.create_dataset("x", data=np.arange(3))
        f.create_group("g").attrs["gain"] = np.float32(2.0)
    with h5py.File(path, "w") as f:
        f["ext"] = h5py.ExternalLink("target.h5", "/x")
        f.create_group("links")["group"] = h5py.ExternalLink("target.h5", "/g")
    return path


def _dangling_external_link(path):
    with h5py.File(path, "w") as f:
        f["ext"] = h5py.ExternalLink("absent.h5", "/x")
    return path


def _dangling_link(path):
    with h5py.File(path, "w") as f:
        f["gone"] = h5py.SoftLink("/nowhere")
    return path


def _scaleoffset(path):
    with h5py.File(path, "w") as f:
        f.create_dataset("so", data=np.arange(1000), chunks=(100,), scaleoffset=0)
    return path


def _bitshuffle(path):
    with h5py.File(path, "w") as f:
        f.create_dataset("bs", data=np.arange(1000), chunks=(100,), **hdf5plugin.Bitshuffle())
    return path


def _virtual(path):
    with h5py.File(path, "w") as f:
        f.create_dataset("source", data=np.arange(10))
        layout = h5py.VirtualLayout(shape=(10,), dtype="i8")
        layout[:] = h5py.VirtualSource(f["source"])
        f.create_virtual_dataset("virtual", layout)
    return path


def _external_storage(path):
    with h5py.File(path, "w") as f:
        f.create_dataset("ext", shape=(10,), dtype="i4", external=[(path.with_name("raw.bin").name, 0, 40)])
    return path


def _reference_array_attribute(path):
    with h5py.File(path, "w") as f:
        f.create_group("a").attrs.create("targets", [f.ref, f.ref], dtype=h5py.ref_dtype)
    return path


def _reserved_attribute(path):
    with h5py.File(path, "w") as f:
        f.create_group("g").attrs["zarr_dtype"] = "x"
    return path


WRITERS = {
    "hdf5-storage": storage_file,
    "hdf5-attributes": attributes_file,
    "hdf5-links-and-references": links_file,
    "hdf5-external-links": external_links_file,
}

# name -> (writer, the refusal's message as a regular expression: it names the object and says why)
REFUSED = {
    "hdf5-null-dataspace": (_null_dataspace, r"^/null: .*null dataspace"),
    "hdf5-dangling-external-link": (_dangling_external_link, r"^/ext: dangling external link to absent\.h5:/x"),
    "hdf5-dangling-link": (_dangling_link, r"^/gone: dangling link"),
    "hdf5-scaleoffset": (_scaleoffset, r"^/so: HDF5 filter scaleoffset has no decoder"),
    "hdf5-bitshuffle": (_bitshuffle, r"^/bs: HDF5 filter bitshuffle"),
    "hdf5-virtual-dataset": (_virtual, r"^/virtual: virtual dataset"),
    "hdf5-external-storage": (_external_storage, r"^/ext: raw data stored in external file 'raw\.bin'"),
    "hdf5-reference-array-attribute": (_reference_array_attribute, r"^/a@targets: .*Reference objects"),
    "hdf5-reserved-attribute-name": (_reserved_attribute, r"^/g: attribute 'zarr_dtype' collides"),
}
