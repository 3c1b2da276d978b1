"""The Dockerfiles, checked without a Docker engine: valid instructions, existing COPY sources, pinned installs,
and entrypoint commands that exist and parse with this package's CLI."""

import fnmatch
import json
import re
import tomllib
from pathlib import Path

import pytest

from nwb_cloud.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
DOCKERFILES = sorted((REPO / "docker").glob("*/Dockerfile"))
INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER", "WORKDIR",
    "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}  # fmt: skip


def instructions(path: Path) -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, with comments dropped and continuation lines joined."""
    joined, current = [], ""
    for line in path.read_text().splitlines():
        if not current and line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip():
            joined.append(current.strip())
        current = ""
    assert not current, f"{path}: a continuation runs off the end"
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in joined]


def ignored(path: Path) -> list[str]:
    ignore = path.with_name("Dockerfile.dockerignore")
    return [p.strip() for p in ignore.read_text().splitlines() if p.strip() and not p.startswith("#")]


def excluded(relative: str, patterns: list[str]) -> bool:
    """Whether the build context leaves ``relative`` out (last matching pattern wins, '!' re-includes)."""
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        if fnmatch.fnmatch(relative, pattern.lstrip("!")):
            result = not negate
    return result


def test_there_are_both_images():
    assert [p.parent.name for p in DOCKERFILES] == ["benchmark-host", "convert"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_is_valid_and_its_copy_sources_exist(dockerfile):
    steps = instructions(dockerfile)
    assert all(name in INSTRUCTIONS for name, _ in steps), [n for n, _ in steps if n not in INSTRUCTIONS]
    names = [name for name, _ in steps]
    assert set(names[: names.index("FROM")]) <= {"ARG"}, "only ARG may come before FROM"
    patterns = ignored(dockerfile)
    for name, arguments in steps:
        if name not in ("COPY", "ADD"):
            continue
        parts = [p for p in arguments.split() if not p.startswith("--")]
        assert "--from" not in arguments and len(parts) >= 2
        for source in parts[:-1]:
            assert (REPO / source).exists(), f"{dockerfile}: COPY source {source} is not in the repository"
            if source != ".":
                assert not excluded(source, patterns), f"{dockerfile}: {source} is left out of the build context"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_installs_are_pinned_and_the_entrypoint_is_the_cli(dockerfile):
    steps = instructions(dockerfile)
    pip = [arguments for name, arguments in steps if name == "RUN" and "pip install" in arguments]
    assert pip and all(re.search(r"(--constraint|-c) constraints\.txt", command) for command in pip)
    if dockerfile.parent.name == "convert":  # the base install is the CLI alone; conversion is the [batch] extra
        assert any("'.[batch]'" in command for command in pip), pip
    (entrypoint,) = [json.loads(arguments) for name, arguments in steps if name == "ENTRYPOINT"]
    (command,) = [json.loads(arguments) for name, arguments in steps if name == "CMD"]  # exec form: no shell
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint == ["nwb-cloud"] and scripts["nwb-cloud"] == "nwb_cloud.cli:main"
    try:
        build_parser().parse_args(command)
    except SystemExit as exit_:  # --help parses, prints and exits 0
        assert exit_.code == 0


def test_the_batch_job_command_parses_as_the_container_runs_it():
    from nwb_cloud.batch.jobs import Run
    from nwb_cloud.convert.places import parse_place

    run = Run(parse_place("s3://bucket/nwb").child(".conversion-state/runs/r1"), "r1")
    for step in ("transfer", "convert", "upload"):
        args = build_parser().parse_args(run.command("session-1", step))
        assert (args.run, args.session, args.step, args.region) == (run.url, "session-1", step, "us-east-1")


def test_the_conversion_image_context_holds_only_the_package():
    patterns = ignored(REPO / "docker" / "convert" / "Dockerfile")
    assert excluded(".venv", patterns) and excluded("tests", patterns) and excluded("results", patterns)
    assert not excluded("nwb_cloud", patterns) and not excluded("constraints.txt", patterns)
    assert not excluded(".git", ignored(REPO / "docker" / "benchmark-host" / "Dockerfile"))  # asv needs it


def test_the_fleet_child_command_parses_as_the_benchmark_host_runs_it():
    from types import SimpleNamespace

    from nwb_cloud.convert.places import parse_place
    from nwb_cloud.fleet.submit import child_command

    plan = SimpleNamespace(run_id="f1", results=parse_place("s3://bucket/bench", region="us-east-2"))
    args = build_parser().parse_args(child_command(plan, "c7i.large-us-east-2"))
    assert (args.run, args.child, args.region) == ("s3://bucket/bench/.nwb-cloud/fleet/f1", "c7i.large-us-east-2",
                                                   "us-east-2")  # fmt: skip
    assert args.handler.__name__ == "run_child_command"
