"""Plans and run states as rich tables: what a user reads before agreeing to spend, and while waiting."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from nwb_cloud.batch.plan import Plan
from nwb_cloud.convert.steps import STEPS


def _mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:,.1f}"


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def render_plan(plan: Plan) -> Group:
    sessions = Table(title=f"plan {plan.run_id}: {plan.source} -> {plan.destination.label}")
    sessions.add_column("session")
    sessions.add_column("interface")
    sessions.add_column("MB", justify="right")
    for step in STEPS:
        sessions.add_column(f"{step} s", justify="right")
    for session in plan.sessions:
        steps = [f"{session.steps[step].seconds:.1f}" for step in STEPS]
        sessions.add_row(session.name, session.interface, _mb(session.bytes), *steps)
    for name in plan.finished:
        sessions.add_row(name, "[dim]already finished: skipped[/]", "", *[""] * len(STEPS))

    machine = plan.machine
    where = "this machine" if machine.instance_type == "local" else f"{plan.market} {machine.instance_type}"
    cost = Table(title=f"estimate on {where} ({machine.vcpus} vCPU), {plan.parallel} at a time, {plan.region}")
    cost.add_column("item")
    cost.add_column("USD", justify="right")
    for label, value in (
        ("compute (EC2)", plan.cost.compute),
        ("storage (EBS gp3)", plan.cost.ebs),
        ("S3 requests", plan.cost.s3_requests),
        ("S3 staging storage", plan.cost.s3_staging),
        ("transfer", plan.cost.transfer),
    ):
        cost.add_row(label, f"{value:.4f}")
    cost.add_row("[bold]total[/]", f"[bold]{plan.cost.total:.4f}[/]")
    cost.add_row("[dim]outputs in S3, per month after the run[/]", f"[dim]{plan.cost.monthly_storage:.4f}[/]")
    lines = [
        sessions,
        cost,
        Text(f"estimated wall time {duration(plan.wall_seconds)}, job time {duration(plan.job_seconds)}"),
    ]
    if plan.alternatives:
        others = ", ".join(f"{name} ${total:.4f}" for name, total in plan.alternatives)
        lines.append(Text(f"next cheapest: {others}"))
    if plan.fixed_costs:
        lines.append(Text("fixed costs (before a job does any work):", style="bold"))
        lines += [Text(f"  - {cost.line()}") for cost in plan.fixed_costs]
    lines.append(Text("assumptions:", style="bold"))
    lines += [Text(f"  - {assumption}") for assumption in plan.assumptions]
    return Group(*lines)
