"""The whole pipeline on loopback, and how close its estimate comes to the runtime it then measures.

A lab drive (an embedded S3 endpoint reached through an rclone remote) holds generated raw sessions; a
second embedded endpoint is the destination; the local executor runs the same job chains AWS Batch would.
:func:`estimate_accuracy` runs it several times: the first run measures (its estimate rests on priors), each
later one is estimated from the records of the runs before it (never its own) and its measured wall time is
compared with that estimate; the median of those ratios is the accuracy (on a shared machine a single run's
ratio is its neighbours' load as much as the estimate's error).
"""

from __future__ import annotations

import contextlib
import statistics
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nwb_cloud.batch.jobs import source_environment
from nwb_cloud.batch.local import LocalRun, run_locally
from nwb_cloud.batch.plan import Plan, make_plan
from nwb_cloud.batch.prices import SHIPPED
from nwb_cloud.cloud.endpoint import Endpoint
from nwb_cloud.convert.labdrive import LabDrive, lab_drive
from nwb_cloud.convert.places import parse_place
from nwb_cloud.convert.rclone import Rclone
from nwb_cloud.convert.records import load_records
from nwb_cloud.convert.sources import RAW_FORMATS, RawSession, conversion_spec, write_session
from nwb_cloud.convert.spec import ConversionSpec


@dataclass
class Loopback:
    drive: LabDrive
    cloud: Endpoint
    raws: list[RawSession]
    spec: ConversionSpec
    records_path: Path

    @property
    def source(self) -> str:
        return self.drive.path("labdata")

    @property
    def rclone(self) -> Rclone:
        return Rclone(self.drive.config_file)

    def env(self) -> dict[str, str]:
        """What a Batch job definition would give each job: the source remote, and destination credentials."""
        return {
            **source_environment(self.source, self.rclone),
            "AWS_ACCESS_KEY_ID": self.cloud.access_key,
            "AWS_SECRET_ACCESS_KEY": self.cloud.secret_key,
        }

    def destination(self):
        """A fresh bucket on the destination endpoint, as a place."""
        bucket = f"run-{uuid.uuid4().hex[:8]}"
        return parse_place(f"s3://{bucket}/nwb", store=self.cloud.create_bucket(bucket))

    def plan(self, destination, parallel: int = 1) -> Plan:
        records = load_records(self.records_path)
        return make_plan(
            self.spec, self.source, destination, self.rclone, records, SHIPPED, executor="local", parallel=parallel
        )

    def run(self, plan: Plan, parallel: int = 1) -> LocalRun:
        return run_locally(plan, self.env(), parallel, self.records_path)


@contextlib.contextmanager
def loopback(
    root: Path, size: str = "tiny", seed: int = 0, interfaces: tuple[str, ...] = tuple(RAW_FORMATS)
) -> Iterator[Loopback]:
    """One raw session per interface on a lab drive under ``root``, a destination endpoint, a records file."""
    root = Path(root)
    folder = root / "drive" / "labdata"
    raws = [
        write_session(folder, f"{interface.removesuffix('Interface').lower()}-1", interface, size, seed)
        for interface in interfaces
    ]
    spec = ConversionSpec.parse(conversion_spec(raws))
    with lab_drive(root / "drive") as drive, Endpoint(root / "cloud") as cloud:
        yield Loopback(drive, cloud, raws, spec, root / "throughput.jsonl")


@dataclass(frozen=True)
class Accuracy:
    calibration: LocalRun  # estimated from priors (or earlier records)
    checks: tuple[LocalRun, ...]  # each estimated, before it ran, from the records of the runs before it

    @property
    def ratios(self) -> list[float]:
        """Measured over estimated wall time of each check run: 1.0 is a perfect estimate."""
        return [run.ratio for run in self.checks]

    @property
    def ratio(self) -> float:
        """The median of the check runs' ratios: one run's figure is the machine's load as much as the estimate."""
        return statistics.median(self.ratios)


def estimate_accuracy(root: Path, size: str = "tiny", parallel: int = 1, checks: int = 3) -> Accuracy:
    """A calibration run, then ``checks`` runs each estimated from the records of the runs before it."""
    with loopback(root, size) as pipeline:
        calibration = pipeline.run(pipeline.plan(pipeline.destination(), parallel), parallel)
        runs = tuple(pipeline.run(pipeline.plan(pipeline.destination(), parallel), parallel) for _ in range(checks))
    return Accuracy(calibration, runs)
