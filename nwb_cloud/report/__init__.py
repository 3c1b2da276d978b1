"""asv results -> tidy pandas tables -> matplotlib figures -> one static HTML page (``reports/index.html``).

``build(results_dir, out_dir)`` writes the page; ``load_cells`` (from :mod:`nwb_cloud.results`) gives the tidy
table (one row per cell) and ``headline_ratios``/``rank_methods`` the report's computed tables, for use from code.
"""

from nwb_cloud.report.build import build
from nwb_cloud.report.errors import ReportError
from nwb_cloud.report.tables import headline_ratios, headline_summary, problems, rank_methods
from nwb_cloud.results import load_cells

__all__ = ["ReportError", "build", "headline_ratios", "headline_summary", "load_cells", "problems", "rank_methods"]
