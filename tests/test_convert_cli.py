"""``nwb-cloud convert`` as a user runs it: flags, credentials from the environment, one-line errors."""

import pytest

from nwb_cloud.cli import main
from nwb_cloud.convert.labdrive import lab_drive
from nwb_cloud.convert.sources import conversion_spec, write_session


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-lab") / "drive"
    raw = write_session(root / "labdata", "ophys-1", "TiffImagingInterface", seed=3)
    with lab_drive(root) as drive:
        yield drive, raw


def test_convert_command_converts_then_skips(drive, endpoint, tmp_path, monkeypatch, capsys):
    lab, raw = drive
    store = endpoint.create_bucket("cli-convert")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", endpoint.access_key)  # boto3's chain, as on a user's machine
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", endpoint.secret_key)
    spec = tmp_path / "spec.yml"
    spec.write_text(conversion_spec([raw]))
    args = [
        "convert", lab.path("labdata"), str(spec), "s3://cli-convert/nwb",
        "--endpoint-url", endpoint.url, "--rclone-config", str(lab.config_file), "--data-dir", str(tmp_path),
    ]  # fmt: skip
    assert main(args) == 0
    assert "finished" in capsys.readouterr().out  # the result on stdout, the progress on stderr
    keys = sorted(o["Key"] for o in store.client().list_objects_v2(Bucket="cli-convert")["Contents"])
    assert keys == ["nwb/.conversion-state/sessions/ophys-1.json", "nwb/ophys-1.nwb"]
    assert (tmp_path / "throughput.jsonl").read_text().count("\n") == 3
    assert main(args) == 0
    assert "skipped" in capsys.readouterr().out


def test_convert_command_bad_input_is_one_line(drive, endpoint, tmp_path, capsys):
    lab, raw = drive
    spec = tmp_path / "spec.yml"
    spec.write_text(conversion_spec([raw]).replace("TiffImagingInterface: TiffImagingInterface", "T: Tiff"))
    code = main(["convert", lab.path("labdata"), str(spec), str(tmp_path / "out"), "--data-dir", str(tmp_path)])
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "'Tiff' is not a NeuroConv data interface" in lines[0]
    assert not (tmp_path / "out").exists()
