"""The corpus: NWB and HDF5 files from several writers, each read through the index or refused by name.

The ``corpus_outcomes`` fixture is filled by the tests (file -> "exact" or "refused: why"); the counts are
printed at the end of the run.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.corpus.cases import CASES

OUTCOMES = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def corpus_outcomes(request) -> dict[str, str]:
    return request.config.stash.setdefault(OUTCOMES, {})


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory):
    """``corpus_file(name)``: the corpus file ``name``, written once per session."""
    written: dict[str, object] = {}
    root = tmp_path_factory.mktemp("corpus")

    def get(name: str):
        if name not in written:
            folder = root / name
            folder.mkdir(parents=True)
            written[name] = CASES[name].make(folder)
        return written[name]

    return get


def pytest_terminal_summary(terminalreporter):
    outcomes = terminalreporter.config.stash.get(OUTCOMES, {})
    if not outcomes:
        return
    counts = Counter(outcome.split(":")[0] for outcome in outcomes.values())
    terminalreporter.section("index corpus outcomes")
    terminalreporter.write_line(
        f"{len(outcomes)} files: " + ", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items()))
    )
    for name, outcome in sorted(outcomes.items()):
        if outcome != "exact":
            terminalreporter.write_line(f"  {name}: {outcome}")
