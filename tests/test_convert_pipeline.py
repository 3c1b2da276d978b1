"""End to end on loopback: lab drive (rclone remote) -> transfer -> NeuroConv -> check -> verified upload to S3.

Two real acquisition formats (SpikeGLX .bin/.meta and multi-page TIFF), converted and read back value for
value; re-runs skip, interruptions leave nothing that looks complete, bad input fails before anything moves.
"""

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import h5py
import numpy as np
import pytest
from pynwb import NWBHDF5IO

from nwb_cloud.convert import conversion
from nwb_cloud.convert.errors import DestinationError, SourceError
from nwb_cloud.convert.labdrive import lab_drive
from nwb_cloud.convert.pipeline import convert
from nwb_cloud.convert.places import parse_place
from nwb_cloud.convert.rclone import Rclone
from nwb_cloud.convert.records import load_records
from nwb_cloud.convert.sources import conversion_spec, write_session
from nwb_cloud.convert.spec import ConversionSpec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab") / "drive"
    raws = [
        write_session(root / "labdata" / "study", "ephys-1", "SpikeGLXRecordingInterface", seed=1),
        write_session(root / "labdata" / "study", "ophys-1", "TiffImagingInterface", seed=2),
    ]
    (root / "emptybucket").mkdir()
    with lab_drive(root) as drive:
        yield drive, raws


@pytest.fixture(scope="module")
def cloud(endpoint):
    return endpoint  # the session's embedded S3 (conftest) plays the destination cloud


@pytest.fixture
def destination(cloud):
    bucket = f"out-{uuid.uuid4().hex[:8]}"
    store = cloud.create_bucket(bucket)
    return parse_place(f"s3://{bucket}/converted", store=store), store


def _keys(store) -> list[str]:
    return sorted(o["Key"] for o in store.client().list_objects_v2(Bucket=store.bucket).get("Contents", []))


def _read(store, key) -> dict:
    """The bulk series of an uploaded NWB file: its values, rate and chunks, read back with pynwb."""
    body = store.client().get_object(Bucket=store.bucket, Key=key)["Body"].read()
    with h5py.File(io.BytesIO(body), "r") as file, NWBHDF5IO(file=file, mode="r") as nwb_io:
        series = next(iter(nwb_io.read().acquisition.values()))
        return {"data": series.data[:], "rate": series.rate, "chunks": series.data.chunks}


def _series(store, key) -> np.ndarray:
    return _read(store, key)["data"]


def _run(lab, destination, tmp_path, spec_text=None, **kwargs):
    drive, raws = lab
    spec = ConversionSpec.parse(spec_text or conversion_spec(raws))
    rclone = Rclone(drive.config_file)
    return convert(spec, drive.path("labdata", "study"), destination, tmp_path / "work", rclone, **kwargs)


def test_both_formats_convert_exactly_and_a_rerun_skips(lab, destination, tmp_path):
    place, store = destination
    records = tmp_path / "throughput.jsonl"
    outcomes = _run(lab, place, tmp_path, records_path=records)
    assert [(o.session, o.status, o.error) for o in outcomes] == [
        ("ephys-1", "finished", None),
        ("ophys-1", "finished", None),
    ]
    assert _keys(store) == [
        "converted/.nwb-cloud/sessions/ephys-1.json",
        "converted/.nwb-cloud/sessions/ophys-1.json",
        "converted/ephys-1.nwb",
        "converted/ophys-1.nwb",
    ]
    _, raws = lab
    for raw in raws:
        np.testing.assert_array_equal(_series(store, f"converted/{raw.name}.nwb"), raw.expected())
        done = place.read_json(f".nwb-cloud/sessions/{raw.name}.json")
        assert done["verified_by"] in ("sha256", "md5") and done["source_bytes"] == raw.nbytes
        assert done["check"]["critical"] == []
    assert not list((tmp_path / "work").rglob("*.nwb"))  # staging emptied once published
    measured = load_records(records)
    assert [(r.session, r.step) for r in measured] == [
        (s, step) for s in ("ephys-1", "ophys-1") for step in ("transfer", "convert", "upload")
    ]
    assert {r.interface for r in measured} == {"SpikeGLXRecordingInterface", "TiffImagingInterface"}
    assert all(r.seconds > 0 and r.bytes > 0 for r in measured)

    etags = {k: store.client().head_object(Bucket=store.bucket, Key=k)["ETag"] for k in _keys(store)}
    again = _run(lab, place, tmp_path, records_path=records)
    assert [o.status for o in again] == ["skipped", "skipped"]
    assert {k: store.client().head_object(Bucket=store.bucket, Key=k)["ETag"] for k in _keys(store)} == etags
    assert len(load_records(records)) == 6  # skipped sessions measure nothing


def test_a_changed_session_is_redone_and_only_it(lab, destination, tmp_path):
    place, store = destination
    drive, raws = lab
    _run(lab, place, tmp_path)
    changed = conversion_spec(raws).replace("sampling_frequency: 30.0", "sampling_frequency: 15.0")
    outcomes = _run(lab, place, tmp_path, spec_text=changed)
    assert [(o.session, o.status) for o in outcomes] == [("ephys-1", "skipped"), ("ophys-1", "finished")]
    assert _read(store, "converted/ophys-1.nwb")["rate"] == 15.0


def test_layout_option_writes_the_recommended_chunks(lab, destination, tmp_path):
    place, store = destination
    _run(lab, place, tmp_path, layout="workload-friendly")
    series = _read(store, "converted/ephys-1.nwb")
    assert series["chunks"] == (45_000, 1)  # one channel per chunk, clipped to the 45000 samples
    np.testing.assert_array_equal(series["data"], lab[1][0].expected())


def test_interrupted_conversion_leaves_nothing_that_looks_complete(lab, destination, tmp_path, monkeypatch):
    place, store = destination
    real = conversion.convert_session

    def interrupted(session, data_folder, nwbfile_path, layout=None):
        real(session, data_folder, nwbfile_path, layout)
        with open(nwbfile_path, "r+b") as stream:  # the file is half written when the interruption comes
            stream.truncate(os.path.getsize(nwbfile_path) // 2)
        raise KeyboardInterrupt

    monkeypatch.setattr(conversion, "convert_session", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _run(lab, place, tmp_path)
    assert _keys(store) == []  # nothing published, no done-record
    work = tmp_path / "work"
    assert not [p for p in work.rglob("*") if p.suffix == ".nwb" or "partial" in p.name]
    assert (work / "ephys-1" / "transferred.json").exists()  # the finished step is kept for the resume

    monkeypatch.setattr(conversion, "convert_session", real)
    outcomes = _run(lab, place, tmp_path)
    assert [o.status for o in outcomes] == ["finished", "finished"]
    assert [r.skipped for r in outcomes[0].steps] == [True, False, False]  # the transfer was not redone
    np.testing.assert_array_equal(_series(store, "converted/ephys-1.nwb"), lab[1][0].expected())


KILLED_CHILD = """
import sys, time
from pathlib import Path
from nwb_cloud.convert import conversion
from nwb_cloud.convert.pipeline import convert
from nwb_cloud.convert.places import parse_place
from nwb_cloud.convert.rclone import Rclone
from nwb_cloud.convert.spec import ConversionSpec
from nwb_cloud.cloud.store import Store

real = conversion.convert_session
def stalled(session, data_folder, nwbfile_path, layout=None):
    real(session, data_folder, nwbfile_path, layout)
    Path(sys.argv[1]).write_text(str(nwbfile_path))
    time.sleep(600)  # killed here: the file is written, not yet checked, hashed or published
conversion.convert_session = stalled
store = Store(sys.argv[5], sys.argv[6], access_key=sys.argv[7], secret_key=sys.argv[8])
convert(ConversionSpec.load(Path(sys.argv[2])), sys.argv[3], parse_place(f"s3://{sys.argv[5]}/converted", store=store),
        Path(sys.argv[4]), Rclone(Path(sys.argv[9])))
"""


def test_killed_process_leaves_nothing_that_looks_complete(lab, destination, tmp_path, cloud):
    place, store = destination
    drive, raws = lab
    spec_file = tmp_path / "spec.yml"
    spec_file.write_text(conversion_spec(raws))
    flag, work = tmp_path / "written", tmp_path / "work"
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(KILLED_CHILD), str(flag), str(spec_file),
         drive.path("labdata", "study"), str(work), store.bucket, cloud.url, cloud.access_key, cloud.secret_key,
         str(drive.config_file)],
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not flag.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert flag.exists(), "the child never reached the conversion"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert _keys(store) == []
    leftover = [p for p in work.rglob("*.nwb")]
    assert [p.relative_to(work).as_posix() for p in leftover] == [".scratch/ephys-1/ephys-1.nwb"]  # scratch only
    assert not (work / "ephys-1" / "converted.json").exists() and not (work / "ephys-1" / "output").exists()

    outcomes = _run(lab, place, tmp_path)
    assert [o.status for o in outcomes] == ["finished", "finished"]
    assert not list(work.rglob("*.nwb")), "a stale scratch folder of a killed run is removed on resume"
    np.testing.assert_array_equal(_series(store, "converted/ephys-1.nwb"), raws[0].expected())


def test_a_session_failing_its_check_is_not_published_and_the_others_are(lab, destination, tmp_path):
    place, store = destination
    _, raws = lab
    no_subject = conversion_spec(raws, subject=None)
    outcomes = _run(lab, place, tmp_path, spec_text=no_subject)
    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert "nwbinspector critical: check_subject_exists" in outcomes[0].error
    assert _keys(store) == []


def test_bad_sources_fail_before_anything_is_written(lab, destination, tmp_path):
    drive, raws = lab
    place, store = destination
    spec = ConversionSpec.parse(conversion_spec(raws))
    rclone = Rclone(drive.config_file)
    cases = {
        "gdrive:lab/study": "rclone remote 'gdrive' is not configured",
        drive.path("nobucket", "study"): "labdrive:nobucket/study does not exist",
        drive.path("labdata", "nowhere"): "labdrive:labdata/nowhere holds no files",
        drive.path("emptybucket"): "labdrive:emptybucket holds no files",
        drive.path("labdata", "study", "ephys-1"): "session ephys-1: labdrive:labdata/study/ephys-1 lacks",
    }
    for source, message in cases.items():
        with pytest.raises(SourceError, match=message):
            convert(spec, source, place, tmp_path / "work", rclone)
    assert _keys(store) == [] and not (tmp_path / "work").exists()


def test_unwritable_destination_fails_before_the_transfer(lab, cloud, tmp_path):
    drive, raws = lab
    spec = ConversionSpec.parse(conversion_spec(raws))
    denied = parse_place("s3://no-such-bucket/x", store=cloud.store("no-such-bucket"))
    with pytest.raises(DestinationError, match="cannot write to s3://no-such-bucket/x"):
        convert(spec, drive.path("labdata", "study"), denied, tmp_path / "work", Rclone(drive.config_file))
    assert not (tmp_path / "work").exists()
