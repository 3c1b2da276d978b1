"""Raw acquisition files in the formats labs have on their drives, generated deterministically.

Each :class:`RawFormat` writes what one NeuroConv interface reads (SpikeGLX ``.bin``/``.meta`` for
``SpikeGLXRecordingInterface``, multi-page TIFF for ``TiffImagingInterface``) from the suite's realistic
signals, and says what array NeuroConv must write from it, so a conversion can be checked value for value.
The ``.meta`` holds the keys neo's and probeinterface's SpikeGLX readers need for a Neuropixels 1.0 probe
(part number NP1000) saving a subset of its channels plus the sync channel.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import yaml

from nwb_cloud.datasets.signals import EcephysSignal, EcephysSpec, OphysSignal, OphysSpec, Signal
from nwb_cloud.errors import NwbCloudError

SESSION_START = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
FORMAT_VERSION = 1  # bump when a writer changes the bytes it writes: part of the cache folder's name


class UnknownRawFormat(NwbCloudError):
    pass


@dataclass(frozen=True)
class RawFormat:
    interface: str  # the NeuroConv interface class that reads it
    sizes: dict  # size name -> signal spec
    signal: Callable[..., Signal]  # (spec, seed) -> Signal
    write: Callable[[Signal, Path], dict]  # writes into a folder, returns the interface's source_data (relative)
    expected: Callable[[np.ndarray], np.ndarray]  # signal samples -> the array NeuroConv writes

    def spec(self, size: str):
        try:
            return self.sizes[size]
        except KeyError:
            raise UnknownRawFormat(f"no size {size!r} for {self.interface}; known: {', '.join(self.sizes)}") from None


# --- SpikeGLX ----------------------------------------------------------------------------------------------

SPIKEGLX_RUN = "run_g0"
SPIKEGLX_BLOCK = 30_000  # samples per write


def _spikeglx_meta(n_channels: int, n_samples: int, rate: float, bin_bytes: int) -> str:
    imro = "(0,384)" + "".join(f"({c} 0 0 500 250 1)" for c in range(384))
    chan_map = "(384,384,1)" + "".join(f"(AP{c};{c}:{c})" for c in range(n_channels)) + "(SY0;768:768)"
    shank_map = "(1,2,480)" + "".join(f"(0:{c % 2}:{c // 2}:1)" for c in range(n_channels))
    meta = {
        "acqApLfSy": "384,384,1",
        "appVersion": "20230905",
        "fileCreateTime": SESSION_START.strftime("%Y-%m-%dT%H:%M:%S"),
        "fileName": f"D:/data/{SPIKEGLX_RUN}/{SPIKEGLX_RUN}_imec0/{SPIKEGLX_RUN}_t0.imec0.ap.bin",
        "fileSizeBytes": str(bin_bytes),
        "fileTimeSecs": f"{n_samples / rate:.6f}",
        "firstSample": "0",
        "imAiRangeMax": "0.6",
        "imAiRangeMin": "-0.6",
        "imDatPrb_dock": "1",
        "imDatPrb_pn": "NP1000",
        "imDatPrb_port": "1",
        "imDatPrb_slot": "2",
        "imDatPrb_sn": "18194814",
        "imDatPrb_type": "0",
        "imMaxInt": "512",
        "imSampRate": f"{rate:g}",
        "nSavedChans": str(n_channels + 1),
        "snsApLfSy": f"{n_channels},0,1",
        "snsSaveChanSubset": f"0:{n_channels - 1},768",
        "typeImEnabled": "1",
        "typeThis": "imec",
        "~imroTbl": imro,
        "~snsChanMap": chan_map,
        "~snsShankMap": shank_map,
    }
    return "".join(f"{key}={value}\n" for key, value in meta.items())


def _sync(start: int, n: int, rate: float) -> np.ndarray:
    """The sync channel: a 1 Hz square wave on bit 6, as a SpikeGLX sync input records it."""
    t = np.arange(start, start + n) / rate
    return ((t % 1.0) < 0.5).astype(np.int16) * 64


def write_spikeglx(signal: Signal, folder: Path) -> dict:
    n_samples, n_channels = signal.shape
    rate = signal.spec.rate
    probe_folder = Path(folder) / SPIKEGLX_RUN / f"{SPIKEGLX_RUN}_imec0"
    probe_folder.mkdir(parents=True, exist_ok=True)
    bin_path = probe_folder / f"{SPIKEGLX_RUN}_t0.imec0.ap.bin"
    with open(bin_path, "wb") as out:
        for start in range(0, n_samples, SPIKEGLX_BLOCK):
            block = signal.read(start, start + SPIKEGLX_BLOCK)
            frame = np.column_stack([block, _sync(start, len(block), rate)])  # channels interleaved per sample
            out.write(np.ascontiguousarray(frame, dtype="<i2").tobytes())
    meta = _spikeglx_meta(n_channels, n_samples, rate, bin_path.stat().st_size)
    bin_path.with_suffix(".meta").write_text(meta)
    return {"folder_path": probe_folder.relative_to(folder).as_posix(), "stream_id": "imec0.ap"}


# --- multi-page TIFF ---------------------------------------------------------------------------------------


def write_tiff(signal: Signal, folder: Path) -> dict:
    import tifffile

    path = Path(folder) / "movie.tif"
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = (signal.read(i, i + 1)[0] for i in range(signal.shape[0]))
    tifffile.imwrite(path, frames, shape=signal.shape, dtype=signal.dtype, photometric="minisblack")
    return {"file_path": path.name, "sampling_frequency": float(signal.spec.rate)}


RAW_FORMATS: dict[str, RawFormat] = {
    raw.interface: raw
    for raw in (
        RawFormat(
            interface="SpikeGLXRecordingInterface",
            sizes={
                "tiny": EcephysSpec(n_samples=45_000, n_channels=32),  # 2.9 MB
                "quick": EcephysSpec(n_samples=10 * 30_000),  # 10 s of 384 channels, 231 MB
                "full": EcephysSpec(n_samples=60 * 30_000),  # 1 min, 1.4 GB
            },
            signal=EcephysSignal,
            write=write_spikeglx,
            expected=lambda samples: samples,  # raw int16 counts; the sync channel is not part of the series
        ),
        RawFormat(
            interface="TiffImagingInterface",
            sizes={
                "tiny": OphysSpec(n_frames=96, height=48, width=64),  # not square: a transposition shows
                "quick": OphysSpec(n_frames=600),  # 20 s of 512x512, 315 MB
                "full": OphysSpec(n_frames=3_000),  # 100 s, 1.6 GB
            },
            signal=OphysSignal,
            write=write_tiff,
            expected=lambda frames: frames.transpose(0, 2, 1),  # NWB stores imaging as (time, x, y)
        ),
    )
}


def get_raw_format(interface: str) -> RawFormat:
    try:
        return RAW_FORMATS[interface]
    except KeyError:
        raise UnknownRawFormat(f"no raw format for {interface!r}; known: {', '.join(RAW_FORMATS)}") from None


@dataclass(frozen=True)
class RawSession:
    name: str
    interface: str
    size: str
    seed: int
    folder: Path  # the session's folder inside the source root
    source_data: dict  # relative to the source root
    nbytes: int

    def expected(self) -> np.ndarray:
        raw = get_raw_format(self.interface)
        signal = raw.signal(raw.spec(self.size), self.seed)
        return raw.expected(signal.read(0, signal.shape[0]))


def write_session(root: Path, name: str, interface: str, size: str = "tiny", seed: int = 0) -> RawSession:
    """The raw files of one session under ``root/name`` (kept when already complete: generation is costly)."""
    raw = get_raw_format(interface)
    signal = raw.signal(raw.spec(size), seed)
    folder = Path(root) / name
    done = folder / f".complete-v{FORMAT_VERSION}-{interface}-{size}-s{seed}.json"
    if done.exists():
        source_data = json.loads(done.read_text())
    else:
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        source_data = raw.write(signal, folder)
        done.write_text(json.dumps(source_data))
    relative = {k: f"{name}/{v}" if k in ("file_path", "folder_path") else v for k, v in source_data.items()}
    nbytes = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p != done)
    return RawSession(name, interface, size, seed, folder, relative, nbytes)


SUBJECT = {"subject_id": "mouse-001", "species": "Mus musculus", "sex": "F", "age": "P90D"}


def conversion_spec(
    sessions: list[RawSession], description: str = "nwb-cloud generated session", subject: dict | None = SUBJECT
) -> str:
    """A NeuroConv YAML specification converting ``sessions`` (one interface each), as a lab would write it.

    ``subject=None`` leaves the Subject out, which nwbinspector reports as critical (DANDI requires one).
    """
    interfaces = {s.interface: s.interface for s in sessions}
    document = {
        "metadata": {
            "NWBFile": {
                "session_description": description,
                "session_start_time": SESSION_START.isoformat(),
                "lab": "nwb-cloud synthetic lab",
                "institution": "nwb-cloud",
                "experimenter": ["Doe, Jane"],
            },
        },
        "data_interfaces": interfaces,
        "experiments": {
            "generated": {
                "sessions": [{"nwbfile_name": s.name, "source_data": {s.interface: s.source_data}} for s in sessions]
            }
        },
    }
    if subject is not None:
        document["metadata"]["Subject"] = dict(subject)
    return yaml.safe_dump(document, sort_keys=False)
