"""Every subcommand, every option, malformed: one line on stderr, exit code 2, no traceback, nothing written.

The commands and their options are read from the argparse tree (nothing listed here by hand): a new option
without a checked value type, or without help and an example, fails these tests.
"""

import argparse
import os
import re

import pytest

from nwb_cloud.cli import build_parser, main
from nwb_cloud.cli._options import Value
from nwb_cloud.settings import SIZES

SKIPPED = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)


def _commands(parser=None, path=()):
    parser = parser or build_parser()
    subcommands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subcommands:
        yield path, parser
    for action in subcommands:
        for name, sub in action.choices.items():
            yield from _commands(sub, (*path, name))


COMMANDS = dict(_commands())


def _valid(action) -> str:
    if action.choices:
        return str(next(iter(action.choices)))
    assert isinstance(action.type, Value), f"{action.dest}: no checked value type"
    return action.type.example


def _needed(parser, but=None) -> list[str]:
    """Valid values for the required positionals and options, except ``but``."""
    args = []
    for action in parser._actions:
        if action is but or isinstance(action, SKIPPED) or action.help == argparse.SUPPRESS:
            continue
        if not action.option_strings and action.nargs not in ("?", "*"):
            args.append(_valid(action))
        elif action.option_strings and action.required:
            args += [action.option_strings[0], _valid(action)]
    return args


def _cases():
    for path, parser in COMMANDS.items():
        for action in parser._actions:
            if isinstance(action, SKIPPED):
                continue
            if action.nargs == 0:  # a flag: a value given to it is malformed
                bad = [[f"{action.option_strings[0]}=yes"]]
            else:
                values = ["no-such-choice"] if action.choices else list(getattr(action.type, "malformed", ()))
                assert values, f"{' '.join(path)} {action.dest}: no checked value type, so no malformed values"
                flag = action.option_strings[:1]
                bad = [[*flag, value] for value in values]
            for argv in bad:
                case = [*path, *_needed(parser, but=action), *argv]
                yield pytest.param(case, id=" ".join(path) + " " + " ".join(argv))


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """An empty working folder holding only the files the valid examples name; nothing else may appear."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NWB_CLOUD_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "aws.config").write_text("[profile lab]\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws.config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws.config"))
    for action in (a for parser in COMMANDS.values() for a in parser._actions):
        example = getattr(action.type, "example", "")
        if getattr(action.type, "__name__", "") == "file" and "/" not in example:
            (tmp_path / example).write_text("")
    return tmp_path


@pytest.mark.parametrize("argv", list(_cases()))
def test_malformed_value_is_one_line_exit_2_and_writes_nothing(argv, sandbox, capsys):
    before = sorted(p.relative_to(sandbox) for p in sandbox.rglob("*"))
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert sorted(p.relative_to(sandbox) for p in sandbox.rglob("*")) == before


def _texts():
    for path, parser in COMMANDS.items():
        yield " ".join(path), parser.description or ""
        for action in parser._actions:
            if not isinstance(action, SKIPPED) and action.help != argparse.SUPPRESS:
                yield f"{' '.join(path)} {action.dest}", action.help or ""
    yield "nwb-cloud", build_parser().description


def _summaries(parser=None):
    """The one-line help of every subcommand, as its parent's help lists it."""
    for action in (parser or build_parser())._actions:
        if isinstance(action, argparse._SubParsersAction):
            for summary in action._choices_actions:
                yield summary.dest, summary.help or ""
            for sub in action.choices.values():
                yield from _summaries(sub)


def test_help_is_plain_text_and_every_option_has_help_with_an_example():
    rst = re.compile(r"``|:(func|mod|class|meth|data):`")
    for where, text in [*_texts(), *_summaries()]:
        assert not rst.search(text), f"{where}: reStructuredText in the help: {text}"
    for path, parser in COMMANDS.items():
        for action in parser._actions:
            if isinstance(action, SKIPPED) or action.help == argparse.SUPPRESS:
                continue
            where = f"{' '.join(path)} {'/'.join(action.option_strings) or action.dest}"
            assert action.help, f"{where}: no help"
            if action.nargs != 0:
                assert "e.g." in action.help or "one of:" in action.help, f"{where}: no example: {action.help}"


def test_one_vocabulary_of_sizes():
    for path, parser in COMMANDS.items():
        for action in parser._actions:
            if "--size" in action.option_strings:
                assert set(action.choices) <= set(SIZES), f"{' '.join(path)} --size takes {action.choices}"


def test_the_sweep_covers_every_command():
    assert len(COMMANDS) >= 20 and ("batch", "plan") in COMMANDS and ("read",) in COMMANDS
    assert os.environ.get("NWB_CLOUD_DATA_DIR") != ""


@pytest.mark.parametrize("command", [["convert"], ["batch", "plan", "--executor", "local"]])
def test_a_spec_key_typo_is_one_line_naming_the_nearest_key_exit_2_and_writes_nothing(command, sandbox, capsys):
    """NeuroConv's own schema lets an unknown session key through (``nwbfile_nam`` would be ignored and the
    file named after its position); the spec's models refuse it before anything is created."""
    (sandbox / "raw").mkdir()
    (sandbox / "spec.yml").write_text(
        "data_interfaces: {movie: TiffImagingInterface}\n"
        "experiments:\n  day1:\n    sessions:\n"
        "      - nwbfile_nam: mouse1\n        source_data: {movie: {file_path: m.tif, sampling_frequency: 30.0}}\n"
    )
    before = sorted(p.relative_to(sandbox) for p in sandbox.rglob("*"))
    code = main([*command, str(sandbox / "raw"), str(sandbox / "spec.yml"), str(sandbox / "out")])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "unknown key experiments.day1.sessions[0].nwbfile_nam: did you mean nwbfile_name?" in lines[0]
    assert sorted(p.relative_to(sandbox) for p in sandbox.rglob("*")) == before


RESULT_COMMANDS = [("batch", "plan"), ("batch", "status"), ("fleet", "plan"), ("fleet", "status"), ("index", "info"),
                   ("recommend",), ("methods",), ("convert",)]  # fmt: skip


@pytest.mark.parametrize("path", RESULT_COMMANDS, ids=" ".join)
def test_commands_that_print_results_take_json(path):
    assert "--json" in {s for a in COMMANDS[path]._actions for s in a.option_strings}


def test_methods_and_index_info_as_json(sandbox, capsys):
    import json

    assert main(["methods", "--json"]) == 0
    registries = json.loads(capsys.readouterr().out)
    assert {"read methods", "layouts", "workloads", "network profiles"} == set(registries)
    assert any(row["name"] == "nwb-index" for row in registries["read methods"])
    assert main(["index", "info", "--json", "--data-dir", str(sandbox / "data")]) == 0
    assert json.loads(capsys.readouterr().out)["indexes"] == []
