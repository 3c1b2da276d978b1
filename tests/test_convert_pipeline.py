"""End to end on loopback: lab drive (rclone remote) -> transfer -> NeuroConv -> check -> verified upload to S3.

Two real acquisition formats (SpikeGLX .bin/.meta and multi-page TIFF), converted and read back value for
value; re-runs skip, interruptions leave nothing that looks complete, bad input fails before anything moves.
"""

import io
import uuid
from pathlib import Path

import h5py
import numpy as np
import pytest
from pynwb import NWBHDF5IO

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
        "converted/.conversion-state/sessions/ephys-1.json",
        "converted/.conversion-state/sessions/ophys-1.json",
        "converted/ephys-1.nwb",
        "converted/ophys-1.nwb",
    ]
    _, raws = lab
    for raw in raws:
        np.testing.assert_array_equal(_series(store, f"converted/{raw.name}.nwb"), raw.expected())
        done = place.read_json(f".conversion-state/sessions/{raw.name}.json")
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


def test_changed_source_bytes_or_layout_redo_the_session_and_say_why(lab, destination, tmp_path, capsys):
    """The done-record's fingerprint covers the sources (size, time, stored hash), the layout and the versions."""
    place, store = destination
    drive, raws = lab
    _run(lab, place, tmp_path)
    assert [o.status for o in _run(lab, place, tmp_path)] == ["skipped", "skipped"]
    movie = raws[1].folder / "movie.tif"
    original = movie.read_bytes()
    try:
        changed = bytearray(original)
        changed[-64:] = bytes(64)  # new pixel values, same name, same size
        movie.write_bytes(bytes(changed))
        capsys.readouterr()
        outcomes = _run(lab, place, tmp_path)
        assert [(o.session, o.status) for o in outcomes] == [("ephys-1", "skipped"), ("ophys-1", "finished")]
        assert outcomes[1].redone.startswith("source ophys-1/movie.tif has new bytes (md5 differs)")
        assert "ophys-1: converting again: source ophys-1/movie.tif" in capsys.readouterr().err
    finally:
        movie.write_bytes(original)
    relaid = _run(lab, place, tmp_path, layout="workload-friendly")
    assert [o.redone for o in relaid] == ["the layout changed (NeuroConv default -> workload-friendly)"] * 2
    assert [o.status for o in _run(lab, place, tmp_path, layout="workload-friendly")] == ["skipped", "skipped"]
    record = place.read_json(".conversion-state/sessions/ophys-1.json")["fingerprint"]
    assert record["layout"] == "workload-friendly" and record["versions"]["neuroconv"]
    assert record["sources"]["ophys-1/movie.tif"]["size"] == len(original)


def test_a_newer_neuroconv_redoes_a_finished_session(lab, destination, tmp_path, monkeypatch):
    from nwb_cloud.convert import fingerprint

    place, _ = destination
    _run(lab, place, tmp_path)
    newer = {**fingerprint.software_versions(), "neuroconv": "99.0"}
    monkeypatch.setattr(fingerprint, "software_versions", lambda: newer)
    outcomes = _run(lab, place, tmp_path)
    assert [o.status for o in outcomes] == ["finished", "finished"]
    assert outcomes[0].redone.startswith("neuroconv changed (") and outcomes[0].redone.endswith(" -> 99.0)")


def test_nwbinspector_on_a_converted_folder_sees_only_the_nwb_files(lab, tmp_path):
    """The state folder is hidden (DANDI upload skips it) and has no '.nwb' in its name (nwbinspector's scan)."""
    from nwbinspector import Importance, inspect_all
    from nwbinspector.utils import get_nwbfiles_from_path

    folder = tmp_path / "converted"
    outcomes = _run(lab, parse_place(str(folder)), tmp_path)
    assert [o.status for o in outcomes] == ["finished", "finished"]
    assert (folder / ".conversion-state" / "sessions" / "ephys-1.json").exists()
    assert sorted(p.name for p in get_nwbfiles_from_path(folder)) == ["ephys-1.nwb", "ophys-1.nwb"]
    messages = list(inspect_all(path=folder))
    assert {Path(m.file_path).name for m in messages} <= {"ephys-1.nwb", "ophys-1.nwb"}
    assert not [m for m in messages if m.importance in (Importance.CRITICAL, Importance.ERROR)], messages


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
