"""The checkout itself: what a merge can leave behind that no other test reads (prose, configuration)."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^(<{7}|>{7})( |$)|^={7}$", re.MULTILINE)
TEXT = {".py", ".md", ".toml", ".txt", ".json", ".cfg", ".yml", ".yaml", ".html", ".csv", ".sh", ""}


def _tracked() -> list[Path]:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in names.decode().split("\0") if name]


def test_no_tracked_text_file_holds_conflict_markers():
    marked = []
    for path in _tracked():
        if path.suffix in TEXT and path.is_file() and path.stat().st_size < 20_000_000:
            text = path.read_text(errors="replace")
            if MARKER.search(text):
                marked.append(str(path.relative_to(ROOT)))
    assert marked == [], f"unresolved merge conflict markers in {marked}"


def test_the_marker_pattern_finds_a_conflict():
    conflict = "a\n<<<<<<< HEAD\nours\n=======\ntheirs\n>>>>>>> main\nb\n"
    assert len(MARKER.findall(conflict)) == 3 and not MARKER.search("a ======= b\n=== heading\n")
