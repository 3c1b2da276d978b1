"""The root of every error a user can cause.

Each sub-package subclasses :class:`NwbCloudError` once; the CLI prints such errors as one line and exits
non-zero, so a message must name the thing that is wrong and, where it helps, what would be right.
"""


class NwbCloudError(Exception):
    """An error caused by input, configuration or environment rather than by a bug."""
