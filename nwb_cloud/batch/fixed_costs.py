"""What a job costs before (and after) it does any work: instance boot, image pull, queue wait, job launch.

A conversion step's own time is measured by the step (from its process's start, so interpreter start and
imports are in it) and estimated from those records. Around it, an executor adds time no step sees: AWS Batch
boots an instance for a run (minimum vCPUs 0), pulls the image onto it, and holds each job in its queue until
the scheduler places it; the local executor launches a process per step and waits for it to exit. Each term
is stated with its source: measured (the local executor's launch and exit, from its own runs) or a dated
assumption with the public page it rests on (AWS, which publishes no guaranteed figure for any of them).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from nwb_cloud.convert.records import Record

PER_JOB, PER_INSTANCE = "job", "instance"
AWS_AS_OF = "2026-12-04"
JOB_STATES = "https://docs.aws.amazon.com/batch/latest/userguide/job_states.html"
PULL_BEHAVIOR = "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/pull-behavior.html"
LOCAL_LAUNCH_PRIOR_S = 0.5  # before the local executor has measured itself


@dataclass(frozen=True)
class FixedCost:
    name: str
    seconds: float
    per: str  # PER_JOB (every step's job pays it) or PER_INSTANCE (once per instance a run starts)
    source: str

    def line(self) -> str:
        return f"{self.name}: {self.seconds:.1f} s per {self.per} ({self.source})"


AWS_BATCH = (
    FixedCost(
        "instance boot", 180.0, PER_INSTANCE,
        f"assumed as of {AWS_AS_OF}: EC2 launch and ECS agent registration of a Batch-managed instance; the compute "
        f"environments keep 0 vCPUs, so every run boots its instances; AWS publishes no figure ({JOB_STATES}: a "
        "RUNNABLE job waits until resources are available)",
    ),
    FixedCost(
        "image pull", 20.0, PER_INSTANCE,
        f"assumed as of {AWS_AS_OF}: the upper end of the 10-20 s the Amazon ECS guide gives for pulling a larger "
        f"image ({PULL_BEHAVIOR}); later jobs on the instance use the cached image",
    ),
    FixedCost(
        "queue wait", 30.0, PER_JOB,
        f"assumed as of {AWS_AS_OF}: the Batch scheduler places queued jobs at intervals ({JOB_STATES}); each step "
        "waits once, after the step it depends on",
    ),
)  # fmt: skip


def local_fixed_costs(records: list[Record]) -> tuple[FixedCost, ...]:
    """The local executor's: no instance, no image, no queue; the launch and exit of each step's process, as
    measured by its earlier runs (the executor's view of a job minus the step's own time)."""
    overheads = [r.job_seconds - r.seconds for r in records if r.instance_type == "local" and r.job_seconds > 0]
    if overheads:
        launch = FixedCost(
            "job launch and exit", max(0.0, statistics.median(overheads)), PER_JOB,
            f"measured: median over {len(overheads)} local jobs of the executor's time minus the step's own",
        )  # fmt: skip
    else:
        launch = FixedCost("job launch and exit", LOCAL_LAUNCH_PRIOR_S, PER_JOB, "not measured yet: assumed")
    return (
        FixedCost("instance boot", 0.0, PER_INSTANCE, "none: this machine is running"),
        FixedCost("image pull", 0.0, PER_INSTANCE, "none: the steps run in this environment, not a container"),
        FixedCost("queue wait", 0.0, PER_JOB, "none: a step starts as soon as its chain's previous one ends"),
        launch,
    )


def per_job_seconds(costs: tuple[FixedCost, ...]) -> float:
    return sum(c.seconds for c in costs if c.per == PER_JOB)


def per_instance_seconds(costs: tuple[FixedCost, ...]) -> float:
    return sum(c.seconds for c in costs if c.per == PER_INSTANCE)
