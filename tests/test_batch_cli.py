"""``batch submit`` never starts instances without an explicit yes; a plan, or a refused submit, writes nothing."""

import json

import pytest

from nwb_cloud.batch.errors import NotConfirmed
from nwb_cloud.cli import _common
from nwb_cloud.cli import batch as batch_cli


class _Plan:
    executor = "batch"

    class cost:  # noqa: N801 - stands in for Plan.cost
        total = 12.3456


@pytest.mark.parametrize("answer, agreed", [("y", True), ("yes", True), ("", False), ("n", False), ("sure", False)])
def test_the_prompt_takes_only_yes(monkeypatch, answer, agreed):
    asked = []
    monkeypatch.setattr(_common.sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(_common.console, "input", lambda prompt: asked.append(prompt) or answer)
    if agreed:
        batch_cli._confirm(_Plan, assume_yes=False)
    else:
        with pytest.raises(NotConfirmed, match="nothing was created"):
            batch_cli._confirm(_Plan, assume_yes=False)
    assert "$12.35" in asked[0]


def test_yes_skips_the_prompt_and_no_terminal_without_yes_refuses(monkeypatch):
    monkeypatch.setattr(_common.console, "input", pytest.fail)
    batch_cli._confirm(_Plan, assume_yes=True)
    monkeypatch.setattr(_common.sys.stdin, "isatty", lambda: False)
    with pytest.raises(NotConfirmed, match=r"estimated \$12.35 without --yes"):
        batch_cli._confirm(_Plan, assume_yes=False)


def test_plan_and_a_refused_submit_write_nothing(tmp_path, capsys, monkeypatch):
    from nwb_cloud.cli import main
    from nwb_cloud.convert.sources import conversion_spec, write_session

    raws = [write_session(tmp_path / "lab", "ophys-1", "TiffImagingInterface")]
    spec = tmp_path / "spec.yml"
    spec.write_text(conversion_spec(raws))
    destination = tmp_path / "not-yet" / "nwb"
    common = [str(tmp_path / "lab"), str(spec), str(destination), "--data-dir", str(tmp_path / "data")]
    assert main(["batch", "plan", *common, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sessions"][0]["name"] == "ophys-1"
    monkeypatch.setattr(_common.sys.stdin, "isatty", lambda: False)
    assert main(["batch", "submit", *common]) == 2
    assert "without --yes" in capsys.readouterr().err
    assert not (tmp_path / "not-yet").exists() and not (tmp_path / "data").exists()
