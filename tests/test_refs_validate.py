"""``nwb-cloud index validate``: an index is checked against docs/index-format.md and against its asset."""

from __future__ import annotations

import json

import pytest

from nwb_cloud.cloud import upload
from nwb_cloud.refs import CorruptIndex, build_index, open_zarr_io
from nwb_cloud.refs.validate import check_asset, check_format, validate
from tests.corpus.pynwb_files import ecephys_file
from tests.test_index_cli import env, nwb_cloud  # noqa: F401 - the CLI's run state (fixture) and runner


@pytest.fixture(scope="module")
def asset(tmp_path_factory):
    return ecephys_file(tmp_path_factory.mktemp("validate") / "ecephys.nwb")


@pytest.fixture(scope="module")
def index(asset):
    return build_index(asset, inline_threshold=0)  # every chunk a byte range


def _copy(index: dict) -> dict:
    return json.loads(json.dumps(index))


def _rebuild(asset):
    return lambda: build_index(asset, inline_threshold=0)


def test_an_index_as_built_is_valid(asset, index):
    assert validate(index, _rebuild(asset)) == []


def test_a_wrong_chunk_offset_is_named(asset, index):
    bad = _copy(index)
    bad["refs"]["acquisition/ElectricalSeries/data/0.0"][1] += 8
    assert check_format(bad) == []  # still a well-formed index: only the asset tells
    problems = validate(bad, _rebuild(asset))
    assert len(problems) == 1 and problems[0].startswith("acquisition/ElectricalSeries/data/0.0: bytes "), problems


def test_a_missing_object_is_named(asset, index):
    bad = _copy(index)
    for key in [k for k in bad["refs"] if k.startswith("general/extracellular_ephys/electrodes/group/")]:
        del bad["refs"][key]
    format_problems = check_format(bad)  # the electrodes' group column is referenced by nothing: format holds
    asset_problems = check_asset(bad, _rebuild(asset))
    assert asset_problems == ["/general/extracellular_ephys/electrodes/group: in the asset, missing from the index"]
    bad = _copy(index)
    for key in [k for k in bad["refs"] if k.startswith("general/devices/")]:
        del bad["refs"][key]
    format_problems = check_format(bad)
    assert any("points at /general/devices/" in p and "not in the index" in p for p in format_problems), format_problems


def test_an_unknown_version_is_refused_before_anything_else(index):
    bad = _copy(index)
    bad["nwb_cloud"]["format"] = "nwb-cloud-refs/99"
    assert check_format(bad) == ["unknown index format 'nwb-cloud-refs/99' (this package reads nwb-cloud-refs/2)"]
    bad = _copy(index)
    del bad["nwb_cloud"]
    assert "not an index this package wrote" in check_format(bad)[0]


def test_format_problems_are_found_without_the_asset(index):
    bad = _copy(index)
    refs = bad["refs"]
    refs["acquisition/ElectricalSeries/data/9.9"] = ["{{u}}", 0, 10]  # outside the grid
    refs["acquisition/ElectricalSeries/data/0.0"][1] = index["nwb_cloud"]["source_bytes"]  # past the end
    attrs = json.loads(refs["acquisition/ElectricalSeries/.zattrs"])
    attrs.setdefault("nwb_cloud_types", {})["no_such_attribute"] = {"dtype": "<f8"}  # tags a missing attribute
    refs["acquisition/ElectricalSeries/.zattrs"] = json.dumps(attrs)
    zarray = json.loads(refs["acquisition/ElectricalSeries/data/.zarray"])
    zarray["filters"] = [{"id": "no-such-codec"}]
    refs["acquisition/ElectricalSeries/data/.zarray"] = json.dumps(zarray)
    problems = "\n".join(check_format(bad))
    for fragment in (
        "data/9.9: not a chunk of the grid",
        "data/0.0: bytes",
        "past the end",
        "ElectricalSeries/.zattrs: nwb_cloud_types tags attributes that are not there",
        "codec {'id': 'no-such-codec'} is unknown",
    ):
        assert fragment in problems, (fragment, problems)


def test_the_cli_validates_a_stored_index_and_an_asset_url(asset, index, tmp_path, store, env):  # noqa: F811
    path = tmp_path / "good.refs.json"
    path.write_text(json.dumps(index))
    good = nwb_cloud("validate", str(path), env=env)
    assert good.returncode == 0 and "valid (nwb-cloud-refs/2; checked against the format and its asset" in good.stdout

    bad = _copy(index)
    bad["refs"]["acquisition/ElectricalSeries/data/0.0"][1] += 8
    path.write_text(json.dumps(bad))
    failed = nwb_cloud("validate", str(path), env=env)
    assert failed.returncode == 1 and "1 problem(s)" in failed.stdout and "data/0.0: bytes" in failed.stdout
    assert nwb_cloud("validate", "--format-only", str(path), env=env).returncode == 0

    bad["nwb_cloud"]["format"] = "nwb-cloud-refs/99"
    path.write_text(json.dumps(bad))
    unknown = nwb_cloud("validate", str(path), env=env)
    assert unknown.returncode == 1 and "unknown index format 'nwb-cloud-refs/99'" in unknown.stdout

    key = "validate/ecephys.nwb"
    upload(store, asset, key, progress=False)
    url = f"s3://{store.bucket}/{key}"
    assert nwb_cloud("build", url, env=env).returncode == 0
    remote = nwb_cloud("validate", url, env=env)
    assert remote.returncode == 0 and f"the index of {url} (cache): valid" in remote.stdout, (
        remote.stdout + remote.stderr
    )


def test_a_reader_refuses_an_index_of_another_format(index):
    bad = _copy(index)
    bad["nwb_cloud"]["format"] = "nwb-cloud-refs/1"
    with pytest.raises(CorruptIndex, match=r"index format 'nwb-cloud-refs/1' is not one this package reads"):
        open_zarr_io(bad)


def test_a_parquet_index_is_validated_like_a_json_one(asset, index, tmp_path):
    from nwb_cloud.refs.storage import load_parquet, write_parquet

    write_parquet(index, tmp_path / "good", record_size=7)
    assert validate(load_parquet(tmp_path / "good"), _rebuild(asset)) == []
    bad = _copy(index)
    bad["refs"]["acquisition/ElectricalSeries/data/0.0"][2] -= 1
    write_parquet(bad, tmp_path / "bad", record_size=7)
    problems = validate(load_parquet(tmp_path / "bad"), _rebuild(asset))
    assert len(problems) == 1 and "acquisition/ElectricalSeries/data/0.0: bytes" in problems[0], problems
