"""rclone: configuration reaches it intact (no shell), filters select exactly a session, failures are named."""

from pathlib import Path

import pytest

from nwb_cloud.convert.errors import ConvertError, SourceError
from nwb_cloud.convert.rclone import Rclone, Remote, include_rules, join, remote_name, remotes_from_config

# A value that `printf "$VAR"` (NeuroConv's rclone image) mangles: % starts a format, \\ an escape.
AWKWARD = "lab 100%d \\n data"


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / AWKWARD
    for relative, content in {
        "s1/run_g0/a.bin": b"x" * 10,
        "s1/run_g0/a.meta": b"m" * 3,
        "s1/notes.txt": b"n" * 5,
        "s2/odd [name]*.tif": b"t" * 7,
        "s2/other.tif": b"o" * 11,
    }.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


def test_remote_name_and_join():
    assert remote_name("gdrive:lab/s1") == "gdrive"
    assert remote_name("my-drive.2:x") == "my-drive.2"
    assert remote_name("/local/folder") is None
    assert remote_name("relative/path:with colon") is None
    assert remote_name(":s3,provider=AWS:bucket") is None
    assert join("lab:", "a", "/b/") == "lab:a/b"
    assert join("lab:root", "a") == "lab:root/a"


def test_remote_options_travel_as_variables_byte_for_byte(tree):
    """An alias remote whose target path holds % and backslashes: rclone must list the right folder."""
    rclone = Rclone(remotes=[Remote("lab", {"type": "alias", "remote": str(tree)})])
    assert rclone.env()["RCLONE_CONFIG_LAB_REMOTE"] == str(tree)
    listed = {entry.path: entry.size for entry in rclone.list_files("lab:")}
    assert listed == {
        "s1/run_g0/a.bin": 10,
        "s1/run_g0/a.meta": 3,
        "s1/notes.txt": 5,
        "s2/odd [name]*.tif": 7,
        "s2/other.tif": 11,
    }


def test_remotes_from_a_config_file_keep_awkward_values(tree, tmp_path):
    config = tmp_path / "rclone.conf"
    config.write_text(f"[lab]\ntype = alias\nremote = {tree}\n\n[other]\ntype = local\n")
    (remote,) = remotes_from_config(config, ["lab"])
    assert remote.options == {"type": "alias", "remote": str(tree)}  # no %-interpolation, no unescaping
    assert {e.path for e in Rclone(config).list_files("lab:s1")} == {"run_g0/a.bin", "run_g0/a.meta", "notes.txt"}
    with pytest.raises(SourceError, match="remote 'gdrive' is not in .*remotes there: lab, other"):
        remotes_from_config(config, ["gdrive"])
    encrypted = tmp_path / "encrypted.conf"
    encrypted.write_text("# Encrypted rclone configuration File\n\nRCLONE_ENCRYPT_V0:\nabc\n")
    with pytest.raises(SourceError, match="is encrypted"):
        remotes_from_config(encrypted, ["lab"])


def test_include_rules_select_exactly_the_named_files_and_folders(tree, tmp_path):
    rules = include_rules(["s2/odd [name]*.tif"], ["s1/run_g0"])
    rclone = Rclone(remotes=[Remote("lab", {"type": "alias", "remote": str(tree)})])
    assert {e.path for e in rclone.list_files("lab:", rules)} == {
        "s1/run_g0/a.bin",
        "s1/run_g0/a.meta",
        "s2/odd [name]*.tif",  # glob characters in a name are escaped, so other.tif is not matched
    }
    copied = tmp_path / "copy"
    seen = []
    rclone.copy("lab:", str(copied), rules, progress=lambda done, total: seen.append((done, total)))
    assert sorted(p.relative_to(copied).as_posix() for p in copied.rglob("*") if p.is_file()) == [
        "s1/run_g0/a.bin",
        "s1/run_g0/a.meta",
        "s2/odd [name]*.tif",
    ]
    assert (copied / "s1/run_g0/a.bin").read_bytes() == b"x" * 10
    assert seen and seen[-1] == (20, 20)


def test_failures_name_the_remote_or_the_path(tree, tmp_path):
    rclone = Rclone(remotes=[Remote("lab", {"type": "alias", "remote": str(tree)})])
    with pytest.raises(SourceError, match="rclone remote 'gdrive' is not configured"):
        rclone.list_files("gdrive:lab")
    with pytest.raises(SourceError, match="lab:missing does not exist"):
        rclone.list_files("lab:missing")
    with pytest.raises(SourceError, match="does not exist"):
        rclone.copy(str(tmp_path / "nothing"), str(tmp_path / "out"))
    with pytest.raises(SourceError, match="rclone config file .* does not exist"):
        Rclone(tmp_path / "no.conf")
    broken = Rclone(remotes=[Remote("bad", {"type": "no-such-backend"})])
    with pytest.raises(ConvertError, match="rclone lsjson bad:x failed"):
        broken.list_files("bad:x")
