"""The three steps of a session, transfer -> convert -> upload, each resumable and each safe to interrupt.

A step records its completion with a marker written last and atomically in the session's staging area; a
marker counts only for the same fingerprint (:mod:`nwb_cloud.convert.fingerprint`: the sources as listed,
the spec, the layout, the software versions), so a re-run resumes where it stopped and redoes what changed.
Output appears only under names that mean "complete": NeuroConv writes in a scratch folder, in a child
process that a signal stops at once (:mod:`nwb_cloud.convert.worker`); the file is checked and hashed, then
renamed or uploaded with verification; the destination's done-record, written after the verified NWB
file, is what makes a session count as finished. The same steps run in one process (``nwb-cloud convert``)
or as separate AWS Batch jobs (``nwb-cloud batch run-step``).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from nwb_cloud import processes
from nwb_cloud.convert.digests import Digests
from nwb_cloud.convert.errors import ConvertError, SourceError
from nwb_cloud.convert.fingerprint import Fingerprint
from nwb_cloud.convert.places import STATE_FOLDER, LocalPlace, place_from_dict
from nwb_cloud.convert.rclone import Rclone, include_rules
from nwb_cloud.convert.records import Record, cpu_seconds, peak_memory_bytes
from nwb_cloud.convert.spec import ConversionSpec, Session
from nwb_cloud.settings import usable_cores

STEPS = ("transfer", "convert", "upload")
TRANSFERRED, CONVERTED = "transferred.json", "converted.json"
DONE_FOLDER = f"{STATE_FOLDER}/sessions"

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


@dataclass(frozen=True)
class Job:
    """Everything the steps of one session need. Serialises to JSON without credentials (a Batch job's spec)."""

    run_id: str
    session_name: str
    spec_text: str
    source: str  # rclone path of the source root (NeuroConv's data folder)
    staging: object  # a Place: this session's staging area
    destination: object  # a Place
    layout: str | None = None
    instance_type: str = "local"
    hourly_cost: dict = field(default_factory=dict)  # step -> dollars per hour of that job's share of an instance
    cores: dict = field(default_factory=dict)  # step -> vCPUs the step's job was given (default: all it sees)

    @cached_property
    def session(self) -> Session:
        origin = f"the spec of run {self.run_id}"  # checked in full when the run was planned
        return ConversionSpec.parse(self.spec_text, origin, check_interfaces=False).session(self.session_name)

    @property
    def output_name(self) -> str:
        """The staged output: no ``.nwb`` in the name, so nwbinspector's scan of a folder never takes it."""
        return f"output/{self.session.name}.h5"

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "session": self.session_name,
            "spec": self.spec_text,
            "source": self.source,
            "staging": self.staging.to_dict(),
            "destination": self.destination.to_dict(),
            "layout": self.layout,
            "instance_type": self.instance_type,
            "hourly_cost": self.hourly_cost,
            "cores": self.cores,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Job:
        try:
            return cls(
                run_id=data["run_id"],
                session_name=data["session"],
                spec_text=data["spec"],
                source=data["source"],
                staging=place_from_dict(data["staging"]),
                destination=place_from_dict(data["destination"]),
                layout=data.get("layout"),
                instance_type=data.get("instance_type", "local"),
                hourly_cost={k: float(v) for k, v in data.get("hourly_cost", {}).items()},
                cores={k: int(v) for k, v in data.get("cores", {}).items()},
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ConvertError(f"not a job specification: {error!r}") from None


@dataclass(frozen=True)
class StepResult:
    step: str
    session: str
    seconds: float
    skipped: bool
    source_bytes: int = 0
    output_bytes: int = 0
    detail: dict = field(default_factory=dict)

    def record(self, job: Job, started: float | None = None) -> Record:
        seconds = time.time() - started if started is not None else self.seconds
        return Record(
            step=self.step,
            interface=job.session.interface_key,
            bytes=self.source_bytes,
            cores=job.cores.get(self.step) or usable_cores(),
            seconds=round(seconds, 3),
            cost=round(seconds / 3600 * job.hourly_cost.get(self.step, 0.0), 6),
            instance_type=job.instance_type,
            peak_memory=peak_memory_bytes(),
            cpu_seconds=round(cpu_seconds(), 3),
            output_bytes=self.output_bytes,
            run_id=job.run_id,
            session=job.session_name,
        )


def session_state(destination, session: Session, fingerprint: Fingerprint) -> tuple[dict | None, str | None]:
    """The destination's done-record of ``session`` if it is current, else (None, why it must be redone).

    Current means: its file is all there and it was made from exactly ``fingerprint`` (sources, spec, layout,
    versions). The reason is None for a session never finished.
    """
    record = destination.read_json(f"{DONE_FOLDER}/{session.name}.json")
    if not record:
        return None, None
    if destination.size(session.nwbfile_name) != record.get("digests", {}).get("size"):
        return None, f"{session.nwbfile_name} at the destination is missing or not the one recorded"
    change = fingerprint.change_from(Fingerprint.from_dict(record.get("fingerprint")))
    return (None, change) if change else (record, None)


def done_record(destination, session: Session, fingerprint: Fingerprint) -> dict | None:
    """The destination's record that ``session`` is finished, if it is current and its file is all there."""
    return session_state(destination, session, fingerprint)[0]


def run_step(
    job: Job,
    step: str,
    rclone: Rclone,
    workdir: Path | None = None,
    progress: Progress | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> StepResult:
    if step not in STEPS:
        raise ConvertError(f"unknown step {step!r}; steps: {', '.join(STEPS)}")
    processes.stop_if_interrupted()
    started = time.perf_counter()
    result = {"transfer": _transfer, "convert": _convert, "upload": _upload}[step](
        job, rclone, Path(workdir or tempfile.gettempdir()), progress or (lambda done, total: None), log
    )
    seconds = time.perf_counter() - started
    return StepResult(step, job.session_name, seconds, *result)


def _made_from(marker: dict | None, fingerprint: Fingerprint | None) -> bool:
    """Whether a step's marker says it was made from exactly ``fingerprint``."""
    return bool(marker) and fingerprint is not None and Fingerprint.from_dict(marker.get("fingerprint")) == fingerprint


def _with_layout(fingerprint: Fingerprint, job: Job) -> Fingerprint:
    """The fingerprint of the output this job makes from sources fingerprinted at transfer (in this software)."""
    return Fingerprint(fingerprint.sources, job.session.digest(), job.layout)


def _transfer(job: Job, rclone: Rclone, workdir: Path, progress: Progress, log) -> tuple:
    session = job.session
    rules = include_rules(session.files, session.folders)
    listed = rclone.list_files(job.source, rules, details=True)
    require_paths(session, job.source, [entry.path for entry in listed])
    fingerprint = Fingerprint.of(session, listed, job.layout)
    marker = job.staging.read_json(TRANSFERRED)
    if done_record(job.destination, session, fingerprint) or _made_from(marker, fingerprint):
        return True, fingerprint.bytes, 0, {}
    total = fingerprint.bytes
    log(f"{session.name}: transfer {len(listed)} files, {total} bytes from {job.source}")
    job.staging.delete(TRANSFERRED)  # a marker of other sources must never vouch for this copy
    rclone.with_remotes(*job.staging.rclone_remotes()).copy(
        job.source, job.staging.rclone_path("source"), rules, progress=progress
    )
    job.staging.write_json(
        TRANSFERRED,
        {"fingerprint": fingerprint.to_dict(), "bytes": total, "files": len(listed), "source": job.source},
    )
    return False, total, 0, {"files": len(listed)}


def _convert(job: Job, rclone: Rclone, workdir: Path, progress: Progress, log) -> tuple:
    from nwb_cloud.convert.worker import convert_and_check

    transferred = job.staging.read_json(TRANSFERRED)
    sources = Fingerprint.from_dict((transferred or {}).get("fingerprint"))
    if sources is None:
        raise ConvertError(f"session {job.session_name}: the transfer step has not finished in {job.staging.label}")
    fingerprint = _with_layout(sources, job)
    marker = job.staging.read_json(CONVERTED)
    if done_record(job.destination, job.session, fingerprint):
        return True, transferred["bytes"], 0, {}
    if _made_from(marker, fingerprint) and job.staging.size(job.output_name) == marker["digests"]["size"]:
        return True, marker.get("source_bytes", 0), marker["digests"]["size"], {}
    session = job.session
    scratch = workdir / ".scratch" / session.name  # what a killed run left here is stale: start afresh
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        if isinstance(job.staging, LocalPlace):
            data_folder = job.staging.local_path("source")
        else:
            data_folder = scratch / "source"
            rclone.with_remotes(*job.staging.rclone_remotes()).copy(
                job.staging.rclone_path("source"), str(data_folder), progress=progress
            )
        partial = scratch / "output" / session.nwbfile_name  # in scratch, a name never means "complete"
        partial.parent.mkdir()
        in_layout = f" in layout {job.layout}" if job.layout else ""
        log(f"{session.name}: convert with {session.interface_key}{in_layout}")
        report = convert_and_check(job.spec_text, session.name, data_folder, partial, job.layout)
        digests = Digests.of(partial)
        job.staging.delete(CONVERTED)
        job.staging.move_in(partial, job.output_name, digests)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    job.staging.write_json(
        CONVERTED,
        {
            "fingerprint": fingerprint.to_dict(),
            "source_bytes": transferred["bytes"],
            "digests": digests.to_dict(),
            "check": report.to_dict(),
        },
    )
    return False, transferred["bytes"], digests.size, {"check": report.to_dict()}


def _upload(job: Job, rclone: Rclone, workdir: Path, progress: Progress, log) -> tuple:
    session = job.session
    converted = job.staging.read_json(CONVERTED)
    fingerprint = Fingerprint.from_dict((converted or {}).get("fingerprint"))
    record = done_record(job.destination, session, fingerprint) if fingerprint else None
    if record:
        return True, record.get("source_bytes", 0), record["digests"]["size"], {}
    if fingerprint is None or fingerprint != _with_layout(fingerprint, job):
        raise ConvertError(f"session {session.name}: the convert step has not finished in {job.staging.label}")
    digests = Digests.from_dict(converted["digests"])
    done_name = f"{DONE_FOLDER}/{session.name}.json"
    job.destination.delete(done_name)  # a record of an older version must never vouch for the new file
    log(f"{session.name}: upload {digests.size} bytes to {job.destination.label}")
    verified = job.destination.copy_from(job.staging, job.output_name, session.nwbfile_name, digests)
    job.destination.write_json(
        done_name,
        {
            "session": session.name,
            "fingerprint": fingerprint.to_dict(),
            "nwbfile": session.nwbfile_name,
            "source": job.source,
            "source_bytes": converted["source_bytes"],
            "digests": digests.to_dict(),
            "verified_by": verified,
            "check": converted["check"],
            "run_id": job.run_id,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )
    with contextlib.suppress(ConvertError, OSError):
        job.staging.delete_all()  # the staging copy has served its purpose; a leftover is only disk
    return False, converted["source_bytes"], digests.size, {"verified_by": verified}


def require_paths(session: Session, source: str, present: list[str]) -> None:
    """Every file and folder ``session`` names exists under ``source`` (folders must hold a file)."""
    files = set(present)
    missing = [p for p in session.files if p not in files]
    for folder in session.folders:
        prefix = folder.strip("/") + "/"
        if folder.strip("/") not in ("", ".") and not any(p.startswith(prefix) for p in files):
            missing.append(folder + "/")
        elif not files:
            missing.append(folder)
    if missing:
        raise SourceError(f"session {session.name}: {source} lacks {', '.join(missing)}")
