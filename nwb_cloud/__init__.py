"""nwb-cloud: measure, recommend and convert NWB data for reading from the cloud.

Sub-packages, lowest layer first (a lower layer never imports a higher one):
``cloud`` (endpoint, network), ``datasets`` (test data, layouts, catalog), ``access`` (read methods),
``workloads`` (what a scientist reads), ``report`` (results to HTML). ``cli`` and ``benchmarks/`` sit on top.
"""

__version__ = "0.1.0"
