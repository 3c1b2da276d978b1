"""What is published agrees with the committed results: README's marked blocks, the report page, the guidance
page and the CSVs are what ``nwb-cloud report`` makes of ``results/``, and README holds no typed figure.

When one of these fails after a bench run or an edit of the results: run ``nwb-cloud report`` and commit
what it rewrote.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nwb_cloud import cli
from nwb_cloud.cli.bench import _report
from nwb_cloud.report import ReportError, blocks
from nwb_cloud.report.build import load

REPO = Path(__file__).parent.parent
README = REPO / "README.md"
TWO_RUNS = Path(__file__).parent / "data" / "two-runs"


@pytest.fixture(scope="module")
def committed():
    return load(REPO / "results")


@pytest.fixture(scope="module")
def republished(tmp_path_factory):
    """``nwb-cloud report`` run on a copy of the repository's results, README and reports (as `make bench` ends)."""
    repo = tmp_path_factory.mktemp("repo")
    shutil.copytree(REPO / "results", repo / "results")
    shutil.copy(README, repo / "README.md")
    (repo / "reports").mkdir()
    _report(repo)
    return repo


def test_readme_blocks_are_what_the_committed_results_give(committed):
    shown, generated = blocks.marked(README.read_text()), blocks.blocks(committed)
    assert set(shown) == set(blocks.BLOCKS)  # every published block has its place in README
    for name, text in generated.items():
        assert shown[name] == text.strip(), f"README block {name!r} differs: run `nwb-cloud report`"


def test_readme_has_no_measured_figure_outside_its_blocks():
    assert blocks.typed_figures(README.read_text()) == []


def test_typed_figures_are_found_and_generated_or_code_ones_are_not():
    typed = "It took ~35 minutes; 26x faster (4.9x for remfile), 0.2-0.7 ms, -22% and 10 MB chunks, 1.5 s."
    assert blocks.typed_figures(typed) == ["~35 minutes", "26x", "4.9x", "0.2-0.7 ms", "22%", "10 MB", "1.5 s"]
    inside = "<!-- nwb-cloud:begin runs -->\n3.2 s and 12× here\n<!-- nwb-cloud:end runs -->\n"
    code = "```sh\nsleep 5 s\n```\nand `--timeout 30s` inline, a 512x512 frame, 384 channels on 2 cores"
    assert blocks.typed_figures(inside + code) == []
    assert blocks.typed_figures(inside.replace("begin runs", "begin other")) != []  # markers must pair by name


def test_the_committed_report_csvs_and_pages_are_what_the_results_give(republished):
    """`make bench` ends with `nwb-cloud report`; run on the committed results it changes nothing committed."""
    assert (republished / "README.md").read_text() == README.read_text()
    made = republished / "reports"
    tables = [f"tables/{path.name}" for path in (REPO / "reports" / "tables").glob("*.csv")]
    compared = ["index.html", "guidance.html", *tables]
    assert {f"tables/{path.name}" for path in (made / "tables").glob("*.csv")} == set(tables)
    for name in compared:
        assert (made / name).read_text() == (REPO / "reports" / name).read_text(), f"reports/{name} differs"


def test_the_bench_rewrites_readme_blocks_from_its_own_run(tmp_path):
    """A bench run's results (two runs here) give README blocks that name those runs, the page explains what
    the runs recorded, and publishing the same results again changes nothing."""
    shutil.copytree(TWO_RUNS, tmp_path / "results")
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- nwb-cloud:begin methods -->\nSTALE\n<!-- nwb-cloud:end methods -->\n\n"
                      "<!-- nwb-cloud:begin study-reads -->\n<!-- nwb-cloud:end study-reads -->\n")  # fmt: skip
    (tmp_path / "reports").mkdir()
    _report(tmp_path)
    text = readme.read_text()
    shown = blocks.marked(text)
    assert shown["methods"].startswith("*From the quick run of commit fc49ec9f on vm (2 cores), 2026-11-24")
    assert "6 cold samples per cell" in shown["methods"] and "STALE" not in text
    assert shown["study-reads"].startswith("*From the full run of commit bb57a4d7")
    assert (
        "| ecephys_electrode | in-region | `nwb-index` | 328 ms | `workload-friendly-paged` | 53.4 ms | 6.15× |"
        in (shown["study-reads"])
    )  # the study's own ratio, not the study's default over the quick run's best (7.67x)
    assert "nwb-index opened from a warm index cache" in shown["methods"]  # the old run's caveat, where it shows
    page = (tmp_path / "reports" / "index.html").read_text()
    session = page[page.index('id="vm--full-open-session"') :]
    assert "nwb-index on neuroconv-default — it received 0 bytes of body in 3 requests" in session
    assert "its index came from a warm local cache" in session and "read-ahead" not in session  # not the old reason
    headline = page[page.index('id="vm--quick-headline"') : page.index('id="vm--quick-how"')]
    assert "<h3>Read methods</h3>" in headline and "n=6" in headline and "IQR " in headline
    assert blocks.fill(text, blocks.blocks(load(tmp_path / "results"))) == text  # published again: no change


def test_an_unknown_block_is_a_clear_error(tmp_path, capsys):
    shutil.copytree(TWO_RUNS, tmp_path / "results")
    (tmp_path / "README.md").write_text("<!-- nwb-cloud:begin headlines -->\n<!-- nwb-cloud:end headlines -->\n")
    assert cli.main(["report", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "out")]) == 2
    assert "README block 'headlines' is not a published block" in capsys.readouterr().err
    with pytest.raises(ReportError, match="known: "):
        blocks.fill("<!-- nwb-cloud:begin x -->\n<!-- nwb-cloud:end x -->", {"runs": ""})
