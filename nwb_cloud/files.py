"""Writing a file whole or not at all: whoever reads it next (the report, a later run) never sees half of one."""

from __future__ import annotations

from pathlib import Path


def write_text_whole(path: str | Path, text: str) -> Path:
    """Write ``text`` beside ``path`` and rename it into place (its folder made if missing); return ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
    return path
