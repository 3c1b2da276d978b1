"""Opening a session file with many small objects and touching what a user looks at first.

pynwb's read plus the tables people open a session for (units with their ragged spike times, trials, the
electrodes table) and every small series' data (hundreds of short icephys sweeps): many small reads
scattered through a file whose bulk is one large series. That is where HDF5's paged aggregation acts, and
where a method's read-ahead cache can help or hurt. The result is a digest of everything touched, so a
method that returns different bytes fails the exact check.
"""

from __future__ import annotations

import hashlib

import numpy as np

from nwb_cloud.workloads.base import Result, Workload


def _digest(arrays) -> str:
    hasher = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        hasher.update(f"{array.dtype}{array.shape}".encode())
        hasher.update(array.tobytes())
    return hasher.hexdigest()


def _table_digest(frame) -> str:
    """A digest of a table's columns (object columns by their text, so references compare by name)."""
    columns = []
    for name in frame.columns:
        values = frame[name].to_numpy()
        if values.dtype == object:
            values = np.array([_text(v) for v in values], dtype=str)
        columns.append(values)
    return _digest([np.asarray(frame.index), *columns])


def _text(value) -> str:
    if isinstance(value, np.ndarray):
        return repr(value.tolist())
    return getattr(value, "name", None) or repr(value)


def open_session(nwbfile, series_path: str) -> Result:
    units = nwbfile.units
    spike_times = [np.asarray(units.get_unit_spike_times(i)) for i in range(len(units))]
    small = [
        series
        for container in (nwbfile.acquisition, nwbfile.stimulus)
        for series in container.values()
        if series.name != series_path.rsplit("/", 1)[-1] and getattr(series, "data", None) is not None
    ]
    small.sort(key=lambda s: s.name)
    bulk = nwbfile.acquisition[series_path.rsplit("/", 1)[-1]]
    summary = {
        "bulk_shape": tuple(int(s) for s in bulk.data.shape),
        "units": len(units),
        "spikes_per_unit": tuple(len(s) for s in spike_times),
        "spike_times": _digest(spike_times),
        "trials": len(nwbfile.trials),
        "trials_table": _table_digest(nwbfile.trials.to_dataframe()),
        "electrodes": len(nwbfile.electrodes),
        "electrodes_table": _table_digest(nwbfile.electrodes.to_dataframe()),
        "small_series": len(small),
        "small_series_data": _digest(np.asarray(series.data[:]) for series in small),
    }
    return Result(raw=summary)


WORKLOADS = [
    Workload(
        name="open_session",
        modality="session",
        description="pynwb open of a session file, then units (ragged spike times), trials, electrodes and "
        "every small series' data",
        run=open_session,
        includes_open=True,
    ),
]
