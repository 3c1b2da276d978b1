"""The NeuroConv YAML spec: validated in full (schema, interfaces, source schemas, paths) before anything runs."""

from pathlib import Path

import pytest
import yaml

from nwb_cloud.convert.errors import SpecError
from nwb_cloud.convert.spec import ConversionSpec

VALID = """
metadata:
  NWBFile:
    session_start_time: 2024-01-15T10:30:00+00:00
    session_description: "100% raw \\\\ data"
  Subject: {subject_id: m1, species: Mus musculus, sex: F, age: P90D}
conversion_options: {stub_test: false}
data_interfaces:
  ap: SpikeGLXRecordingInterface
  movie: TiffImagingInterface
experiments:
  day1:
    metadata: {NWBFile: {session_description: day one}}
    sessions:
      - nwbfile_name: mouse1-day1.nwb
        source_data:
          ap: {folder_path: m1/day1/run_g0_imec0, stream_id: imec0.ap}
          movie: {file_path: m1/day1/movie.tif, sampling_frequency: 30.0}
        conversion_options: {ap: {stub_test: true}}
      - source_data:
          movie: {file_path: "m1/day1/odd [name]*.tif", sampling_frequency: 15.0}
"""


def test_valid_spec_splits_into_sessions_with_merged_layers():
    spec = ConversionSpec.parse(VALID)
    first, second = spec.sessions
    assert first.name == "mouse1-day1" and first.nwbfile_name == "mouse1-day1.nwb"
    assert second.name == "day1-2"  # no nwbfile_name: experiment and position
    assert first.interfaces == {"ap": "SpikeGLXRecordingInterface", "movie": "TiffImagingInterface"}
    assert first.interface_key == "SpikeGLXRecordingInterface+TiffImagingInterface"
    assert first.folders == ("m1/day1/run_g0_imec0",) and first.files == ("m1/day1/movie.tif",)
    # NeuroConv's rule: session options win over the global block, per interface
    assert first.conversion_options == {"ap": {"stub_test": True}, "movie": {"stub_test": False}}
    # dates stay strings (as in NeuroConv's loader) so the spec round-trips through JSON
    assert first.metadata_layers[0]["NWBFile"]["session_start_time"] == "2024-01-15T10:30:00+00:00"
    assert first.metadata_layers[1] == {"NWBFile": {"session_description": "day one"}}
    assert first.source_data_in(Path("/data"))["ap"]["folder_path"] == "/data/m1/day1/run_g0_imec0"


def test_session_digest_changes_with_its_content_only():
    spec = ConversionSpec.parse(VALID)
    changed = ConversionSpec.parse(VALID.replace("sampling_frequency: 15.0", "sampling_frequency: 20.0"))
    assert spec.sessions[0].digest() == changed.sessions[0].digest()
    assert spec.sessions[1].digest() != changed.sessions[1].digest()


def _mutated(change) -> str:
    document = yaml.safe_load(VALID)
    change(document)
    return yaml.safe_dump(document)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.pop("experiments"), "lab.yml: experiments: a required key is missing"),
        (lambda d: d.update(surprise=1), "unknown key surprise: valid keys: conversion_options, data_interfaces"),
        (
            lambda d: d["experiments"]["day1"]["sessions"][0].update(nwbfile_nam="m1"),  # NeuroConv ignores it
            "unknown key experiments.day1.sessions[0].nwbfile_nam: did you mean nwbfile_name?",
        ),
        (lambda d: d["experiments"]["day1"].update(sesions=[]), "unknown key experiments.day1.sesions: did you mean"),
        (lambda d: d.update(data_interface={}), "unknown key data_interface: did you mean data_interfaces?"),
        (
            lambda d: d["experiments"]["day1"]["sessions"][0].update(nwbfile_name=5),
            "experiments.day1.sessions[0].nwbfile_name: Input should be a valid string (got int 5)",
        ),
        (
            lambda d: d["experiments"]["day1"]["sessions"][0]["source_data"].update(ap=3),
            "sessions[0].source_data.ap: Input should be a valid dictionary (got int 3)",
        ),
        (lambda d: d["experiments"]["day1"]["sessions"][1].pop("source_data"), "sessions[1].source_data: a required"),
        (lambda d: d["metadata"]["NWBFile"].update(session_start_time=5), "metadata.NWBFile.session_start_time"),
        (lambda d: d["data_interfaces"].update(ap="SpikeGLXRecordingInterfac"), "did you mean SpikeGLXRecording"),
        (
            lambda d: d["experiments"]["day1"]["sessions"][0]["source_data"]["ap"].pop("stream_id"),
            "does not fit SpikeGLXRecordingInterface: 'stream_id' is a required property",
        ),
        (
            lambda d: d["experiments"]["day1"]["sessions"][0]["source_data"].update(lfp={"folder_path": "x"}),
            "names ['lfp'], not in data_interfaces",
        ),
        (
            lambda d: d["experiments"]["day1"]["sessions"][0]["source_data"]["movie"].update(file_path="/abs/m.tif"),
            "paths must be relative to the source",
        ),
        (
            lambda d: d["experiments"]["day1"]["sessions"][0]["source_data"]["movie"].update(file_path="../m.tif"),
            "paths must be relative to the source",
        ),
        (lambda d: d["experiments"]["day1"]["sessions"][1].update(nwbfile_name="mouse1-day1"), "used by two sessions"),
        (lambda d: d["experiments"]["day1"]["sessions"][1].update(nwbfile_name="a/b"), "must be letters"),
        (lambda d: d.update(upload_to_dandiset="000123"), "'upload_to_dandiset' is not supported"),
        (lambda d: d["experiments"]["day1"].update(sessions=[]), "lists no sessions"),
    ],
)
def test_bad_specs_are_refused_with_the_reason(change, message):
    with pytest.raises(SpecError) as raised:
        ConversionSpec.parse(_mutated(change), origin="lab.yml")
    assert message in str(raised.value)
    assert str(raised.value).startswith("lab.yml")


def test_not_yaml_and_not_a_mapping():
    with pytest.raises(SpecError, match="is not valid YAML"):
        ConversionSpec.parse("experiments: [unclosed", origin="x.yml")
    with pytest.raises(SpecError, match="must be a YAML mapping"):
        ConversionSpec.parse("- a list", origin="x.yml")
    with pytest.raises(SpecError, match="cannot read conversion spec"):
        ConversionSpec.load(Path("/nonexistent/spec.yml"))


def test_unknown_session_name():
    with pytest.raises(SpecError, match="no session 'nope'.*mouse1-day1, day1-2"):
        ConversionSpec.parse(VALID).session("nope")
