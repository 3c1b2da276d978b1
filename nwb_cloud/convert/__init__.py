"""Cloud conversion: rclone transfers, NeuroConv runs from a YAML spec, checks, verified uploads.

``nwb-cloud convert`` runs :func:`pipeline.convert`; AWS Batch runs the same :mod:`steps` as separate jobs.
"""

from nwb_cloud.convert.errors import (
    CheckFailed,
    ChecksumMismatch,
    ConvertError,
    DestinationError,
    SourceError,
    SpecError,
)
from nwb_cloud.convert.places import LocalPlace, S3Place, parse_place
from nwb_cloud.convert.rclone import Rclone, Remote
from nwb_cloud.convert.spec import ConversionSpec, Session

__all__ = [
    "CheckFailed",
    "ChecksumMismatch",
    "ConversionSpec",
    "ConvertError",
    "DestinationError",
    "LocalPlace",
    "Rclone",
    "Remote",
    "S3Place",
    "Session",
    "SourceError",
    "SpecError",
    "parse_place",
]
