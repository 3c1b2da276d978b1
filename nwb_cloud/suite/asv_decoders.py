"""The decoder table as asv records it: under ``nwb-cloud bench``, the very table the run's prepare measured.

Prepare measures the table once (it goes into the run info and drives nwb-index's choice of decoder). Measuring
it again in asv's setup cache cost ~14 s a run and gave asv's page other figures than the report's for the
same decoders in the same run. A bare ``asv run`` (no ``NWB_CLOUD_STATE``) measures it here.
"""

from __future__ import annotations

import os

from nwb_cloud.analysis import decode
from nwb_cloud.settings import Settings
from nwb_cloud.suite.state import RunState


def prepared_decoders() -> list[dict] | None:
    """The decoder table of the run ``NWB_CLOUD_STATE`` names (None: no run, or one prepared without it)."""
    if "NWB_CLOUD_STATE" not in os.environ:
        return None
    table = RunState.load(Settings.from_env().state_path).extra.get("decoders")
    return list(table) if table else None


class InflateDecoders(decode.InflateDecoders):
    __doc__ = decode.InflateDecoders.__doc__

    def setup_cache(self) -> list[dict]:
        prepared = prepared_decoders()
        return prepared if prepared is not None else super().setup_cache()
