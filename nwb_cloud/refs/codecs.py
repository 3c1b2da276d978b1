"""The codecs the index adds to numcodecs: JSON for compound rows that hold references or strings, and HDF5's LZF.

numcodecs' ``JSON`` codec encodes a structured array with object fields but cannot decode it (numpy will not
assign a list of lists to structured rows; numcodecs issue 333), and hdmf-zarr's own choice, ``Pickle``, is
refused by numcodecs >= 0.15 unless unsafe decoding is switched on - an index fetched from a bucket must
never unpickle. ``TableJSON`` is ``JSON`` with a decoder that turns rows back into tuples, so an NWB
``TimeSeriesReferenceVectorData`` (``idx_start``, ``count``, object reference) reads as hdmf-zarr expects.
``HDF5LZF`` decodes h5py's LZF filter (which kerchunk and LINDI refuse) with imagecodecs' LZF decoder.
Both are registered when :mod:`nwb_cloud.refs` is imported; readers of an index with such datasets need them.
"""

from __future__ import annotations

import json

import numpy as np
from numcodecs import JSON, register_codec
from numcodecs.abc import Codec
from numcodecs.compat import ensure_bytes, ensure_text, ndarray_copy


class TableJSON(JSON):
    codec_id = "nwb-cloud-table-json"

    def decode(self, buf, out=None):
        items = json.loads(ensure_text(buf, self._text_encoding))
        dtype = np.dtype(_dtype_from_json(items[-2]))
        shape = items[-1]
        rows = [tuple(row) for row in items[:-2]]
        decoded = np.empty(len(rows), dtype=dtype)
        decoded[:] = rows
        decoded = decoded.reshape(shape)
        if out is not None:
            np.copyto(out, decoded)
            return out
        return decoded

    def encode(self, buf):
        buf = np.asarray(buf)
        items = buf.tolist()
        items.extend((_dtype_to_json(buf.dtype), list(buf.shape)))
        return self._encoder.encode(items).encode(self._text_encoding)


def _dtype_to_json(dtype: np.dtype):
    """A structured dtype as ``[[name, str], ...]`` (numcodecs' ``dtype.str`` loses the field names)."""
    return [[name, dtype[name].str] for name in dtype.names]


def _dtype_from_json(fields) -> list[tuple[str, str]]:
    return [(name, kind) for name, kind in fields]


register_codec(TableJSON)


class HDF5LZF(Codec):
    """HDF5's LZF filter (h5py's ``lzf_filter.c``, filter 32000): raw LZF blocks with no header.

    Decoding needs the decoded size, which the stream does not carry: it is the chunk's size in bytes
    (``nbytes``, set per array by the index). Encoding is not needed to read and is not offered.
    """

    codec_id = "nwb-cloud-hdf5-lzf"

    def __init__(self, nbytes: int):
        self.nbytes = int(nbytes)

    def decode(self, buf, out=None):
        import imagecodecs  # only an index with LZF data needs it

        decoded = imagecodecs.lzf_decode(ensure_bytes(buf), header=False, out=self.nbytes)
        if len(decoded) != self.nbytes:
            raise ValueError(f"an LZF chunk decoded to {len(decoded)} bytes, not the chunk's {self.nbytes}")
        return ndarray_copy(decoded, out)

    def encode(self, buf):
        raise NotImplementedError("the index reads HDF5's LZF chunks; it never writes them")


register_codec(HDF5LZF)
