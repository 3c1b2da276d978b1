"""asv results -> tidy pandas tables -> matplotlib figures -> one static HTML page (``reports/index.html``), and
the rest of what is published from them (``publish``: the guidance page, README's marked blocks).

``build(results_dir, out_dir)`` writes the page; ``load_cells`` (from :mod:`nwb_cloud.results`) gives the tidy
table (one row per cell) and ``headline_ratios``/``rank_methods`` (from :mod:`nwb_cloud.results.tables`, the one
tables module of the report, the guidance page and the CSVs) its computed tables, for use from code.
"""

from nwb_cloud.report.build import build, publish
from nwb_cloud.report.errors import ReportError
from nwb_cloud.results import load_cells
from nwb_cloud.results.tables import headline_ratios, headline_summary, problems, rank_methods

__all__ = [
    "ReportError",
    "build",
    "publish",
    "headline_ratios",
    "headline_summary",
    "load_cells",
    "problems",
    "rank_methods",
]
