"""rewrite(): an existing NWB file into a new layout, nothing lost, never in place, never half-written.

Fidelity is checked independently of the rewrite's own verification: the output is compared with the
source object by object (:func:`nwb_cloud.refs.compare.compare_ios`) and the series' values exactly.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import h5py
import numpy as np
import pytest
from pynwb import NWBHDF5IO

from nwb_cloud import cli
from nwb_cloud.datasets.layouts import LAYOUTS
from nwb_cloud.datasets.modalities import MODALITIES
from nwb_cloud.datasets.session import write_session
from nwb_cloud.datasets.writer import write_recording
from nwb_cloud.recommend import BadChunkShape, OutputExists, RewriteFailed, SeriesNotFound, UnknownCodec, rewrite
from nwb_cloud.recommend import rewriting as rewrite_module
from nwb_cloud.recommend.rewriting import verify_rewrite
from nwb_cloud.refs.compare import compare_ios

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
SESSION_SERIES = "acquisition/ElectricalSeries"


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    return write_session(tmp_path_factory.mktemp("rewrite-session"))


@pytest.fixture(scope="module")
def ophys(tmp_path_factory):
    written = write_recording(MODALITIES["ophys"], LAYOUTS["neuroconv-default"], "tiny", 0,
                              tmp_path_factory.mktemp("rewrite-ophys"))  # fmt: skip
    return written.path


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _same(source, output) -> list[str]:
    with NWBHDF5IO(str(source), "r") as expected, NWBHDF5IO(str(output), "r") as actual:
        return compare_ios(expected, actual)


def _entries(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_rewrite_of_the_rich_session_file_keeps_every_object(session, tmp_path):
    before = _digest(session)
    out = tmp_path / "session-rechunked.nwb"
    report = rewrite(session, out, SESSION_SERIES, chunk_shape=(3000, 1), codec="blosc-zstd-bitshuffle")
    assert _digest(session) == before  # the input is never written
    assert report.verified and report.chunks_before == (1000, 8) and report.codec_before == "gzip-4"
    assert _same(session, out) == []
    with h5py.File(out, "r") as new, h5py.File(session, "r") as old:
        dataset = new[f"{SESSION_SERIES}/data"]
        assert dataset.chunks == (3000, 1)
        assert dataset.id.get_create_plist().get_filter(0)[0] == 32001
        np.testing.assert_array_equal(dataset[()], old[f"{SESSION_SERIES}/data"][()])
        lfp = "processing/ecephys/LFP/LFP/data"  # another series keeps its own layout
        assert new[lfp].chunks == old[lfp].chunks and new[lfp].compression == old[lfp].compression
    assert _entries(tmp_path) == ["session-rechunked.nwb"]


def test_large_datasets_are_verified_block_by_block(session, tmp_path):
    out = tmp_path / "blocks.nwb"
    report = rewrite(session, out, SESSION_SERIES, chunk_shape=(512, 4), codec="shuffle-gzip-4", in_memory_bytes=1000)
    assert f"/{SESSION_SERIES}/data" in report.datasets_compared_in_blocks
    assert len(report.datasets_compared_in_blocks) > 2
    assert _same(session, out) == []


def test_rewrite_of_a_tiny_asset_into_a_patch_layout(ophys, tmp_path):
    out = tmp_path / "patch.nwb"
    report = rewrite(ophys, out, "acquisition/TwoPhotonSeries", chunk_shape=(96, 16, 16), codec="zstd")
    assert report.chunk_shape == (96, 16, 16) and report.codec == "zstd"
    with h5py.File(out, "r") as new, h5py.File(ophys, "r") as old:
        assert new["acquisition/TwoPhotonSeries/data"].chunks == (96, 16, 16)
        np.testing.assert_array_equal(
            new["acquisition/TwoPhotonSeries/data"][()], old["acquisition/TwoPhotonSeries/data"][()]
        )
    assert _same(ophys, out) == []


def test_the_input_is_never_the_output(ophys, tmp_path):
    before = _digest(ophys)
    for overwrite in (False, True):
        with pytest.raises(OutputExists, match="is the input itself"):
            rewrite(ophys, ophys, "acquisition/TwoPhotonSeries", chunk_shape=(96, 16, 16), codec="zstd",
                    overwrite=overwrite)  # fmt: skip
    link = tmp_path / "hard-link.nwb"
    os.link(ophys, link)
    with pytest.raises(OutputExists, match="is the input itself"):
        rewrite(ophys, link, "acquisition/TwoPhotonSeries", chunk_shape=(96, 16, 16), codec="zstd", overwrite=True)
    assert _digest(ophys) == before


def test_an_existing_output_is_replaced_only_with_overwrite(ophys, tmp_path):
    out = tmp_path / "out.nwb"
    out.write_bytes(b"an older file")
    with pytest.raises(OutputExists, match="pass --overwrite"):
        rewrite(ophys, out, "acquisition/TwoPhotonSeries", chunk_shape=(96, 32, 32), codec="gzip-1")
    assert out.read_bytes() == b"an older file"
    rewrite(ophys, out, "acquisition/TwoPhotonSeries", chunk_shape=(96, 32, 32), codec="gzip-1", overwrite=True)
    assert _same(ophys, out) == []
    assert _entries(tmp_path) == ["out.nwb"]


def test_a_rewrite_that_changes_data_is_refused_and_leaves_nothing(ophys, tmp_path, monkeypatch):
    """A write that changes one value: verification catches it, nothing is left, the input is untouched."""
    original = rewrite_module._export

    def corrupting(source, target, *args):
        original(source, target, *args)
        with h5py.File(target, "r+") as file:
            file["acquisition/TwoPhotonSeries/data"][5, 7, 9] += 1

    monkeypatch.setattr(rewrite_module, "_export", corrupting)
    before = _digest(ophys)
    with pytest.raises(RewriteFailed, match=r"differs from it in .*1 of 393216 values differ"):
        rewrite(ophys, tmp_path / "bad.nwb", "acquisition/TwoPhotonSeries", chunk_shape=(96, 16, 16), codec="gzip-4")
    assert _entries(tmp_path) == [] and _digest(ophys) == before


def test_an_interrupted_rewrite_leaves_nothing(ophys, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        (tmp_path / f".partial-{os.getpid()}-cut.nwb").write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(rewrite_module, "_export", interrupted)
    with pytest.raises(KeyboardInterrupt):
        rewrite(ophys, tmp_path / "cut.nwb", "acquisition/TwoPhotonSeries", chunk_shape=(96, 16, 16), codec="gzip-4")
    assert _entries(tmp_path) == []


def test_verification_sees_a_changed_attribute(ophys, tmp_path):
    out = tmp_path / "out.nwb"
    rewrite(ophys, out, "acquisition/TwoPhotonSeries", chunk_shape=(96, 16, 16), codec="gzip-4")
    tampered = tmp_path / "tampered.nwb"
    shutil.copy(out, tampered)
    with h5py.File(tampered, "r+") as file:
        file["acquisition/TwoPhotonSeries"].attrs["description"] = "changed"
    differences, _ = verify_rewrite(ophys, tampered, "acquisition/TwoPhotonSeries/data", (96, 16, 16), "gzip-4")
    assert any("description" in d and "changed" in d for d in differences)
    differences, _ = verify_rewrite(ophys, out, "acquisition/TwoPhotonSeries/data", (96, 32, 32), "zstd")
    assert any("chunks (96, 16, 16), wanted (96, 32, 32)" in d for d in differences)
    assert any("codec gzip-4, wanted zstd" in d for d in differences)


def test_bad_rewrite_requests_are_named(ophys, tmp_path):
    out = tmp_path / "out.nwb"
    with pytest.raises(SeriesNotFound, match="has no series 'acquisition/Nope'.*acquisition/TwoPhotonSeries"):
        rewrite(ophys, out, "acquisition/Nope", chunk_shape=(96, 16, 16), codec="gzip-4")
    with pytest.raises(BadChunkShape, match="larger than the data"):
        rewrite(ophys, out, "acquisition/TwoPhotonSeries", chunk_shape=(96, 16, 128), codec="gzip-4")
    with pytest.raises(BadChunkShape, match="rank 2"):
        rewrite(ophys, out, "acquisition/TwoPhotonSeries", chunk_shape=(96, 16), codec="gzip-4")
    with pytest.raises(UnknownCodec, match="unknown codec 'zip'"):
        rewrite(ophys, out, "acquisition/TwoPhotonSeries", chunk_shape=(96, 16, 16), codec="zip")
    assert _entries(tmp_path) == []


def test_cli_rewrite(ophys, tmp_path, capsys):
    out = tmp_path / "cli.nwb"
    argv = ["rewrite", str(ophys), str(out), "--series", "acquisition/TwoPhotonSeries", "--chunks", "96,32,32",
            "--codec", "blosc-lz4-shuffle"]  # fmt: skip
    assert cli.main(argv) == 0
    assert "verified equal to the source" in capsys.readouterr().out
    assert cli.main(argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "exists: choose another path, or pass --overwrite" in error
    assert cli.main([*argv, "--overwrite", "--json"]) == 0
    assert '"codec": "blosc-lz4-shuffle"' in capsys.readouterr().out
    assert (
        cli.main(["rewrite", str(ophys), str(out), "--series", "acquisition/TwoPhotonSeries", "--chunks", "96,32,32"])
        == 2
    )
    assert "--chunks goes with exactly one --codec" in capsys.readouterr().err


def test_cli_rewrite_into_the_recommended_layout(ophys, tmp_path, capsys):
    from nwb_cloud.recommend import fit
    from nwb_cloud.recommend.synthetic import synthetic_measurements

    model_path = fit(synthetic_measurements()).model.save(tmp_path / "model.json")
    out = tmp_path / "recommended.nwb"
    argv = ["rewrite", str(ophys), str(out), "--series", "acquisition/TwoPhotonSeries", "--recommend",
            "--workload", "ophys_patch", "--profile", "in-region", "--model", str(model_path), "--json"]  # fmt: skip
    assert cli.main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verified"] and _same(ophys, out) == []
    with h5py.File(out, "r") as file:
        assert file["acquisition/TwoPhotonSeries/data"].chunks == tuple(report["chunk_shape"])
    assert cli.main([*argv[:5], "--recommend", "--chunks", "96,32,32", "--codec", "gzip-4"]) == 2
    assert "either --recommend" in capsys.readouterr().err


def test_rewrite_of_a_zarr_file(tmp_path):
    import zarr

    layout = next(name for name, row in LAYOUTS.items() if row.backend == "zarr" and row.applies_to("ophys"))
    source = write_recording(MODALITIES["ophys"], LAYOUTS[layout], "tiny", 0, tmp_path / "assets").path
    out = tmp_path / "out.nwb.zarr"
    report = rewrite(
        source, out, "acquisition/TwoPhotonSeries", chunk_shape=(96, 16, 16), codec="blosc-zstd-bitshuffle"
    )
    assert report.verified and report.codec_before == "gzip-4"
    new = zarr.open_group(str(out), mode="r")["acquisition/TwoPhotonSeries/data"]
    old = zarr.open_group(str(source), mode="r")["acquisition/TwoPhotonSeries/data"]
    assert new.chunks == (96, 16, 16) and new.compressor.get_config()["cname"] == "zstd"
    np.testing.assert_array_equal(new[()], old[()])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["assets", "out.nwb.zarr"]
