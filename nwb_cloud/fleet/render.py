"""The fleet plan and the children's states as rich tables: what a user reads before agreeing to spend."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from nwb_cloud.batch.render import duration
from nwb_cloud.fleet.plan import FleetPlan

COST_COLUMNS = (("compute", "compute (EC2)"), ("storage", "storage (EBS gp3)"), ("requests", "S3 requests"),
                ("transfer", "transfer"), ("data_upload", "data upload (S3 PUTs + storage)"))  # fmt: skip
PHASES = ("startup", "process", "prepare", "network", "suite", "push")


def render_plan(plan: FleetPlan) -> Group:
    where = "local processes" if plan.executor == "local" else f"AWS Batch, {plan.market}"
    children = Table(title=f"fleet plan {plan.run_id}: {plan.size} suite, {plan.source} data, {where}")
    children.add_column("child (asv machine)")
    for name in ("vCPU", "$/hour", "est. time", "USD"):
        children.add_column(name, justify="right")
    for child in plan.children:
        children.add_row(child.child.name, str(child.vcpus), f"{child.hourly:.4f}", duration(child.estimate.seconds),
                         f"{child.cost.total:.4f}")  # fmt: skip
    children.add_row("[bold]fleet (children at once)[/]", "", "", duration(plan.wall_seconds),
                     f"[bold]{plan.total:.4f}[/]")  # fmt: skip
    cost = Table(title="what it costs (USD, all children)")
    cost.add_column("item")
    cost.add_column("USD", justify="right")
    for field, label in COST_COLUMNS:
        cost.add_row(label, f"{sum(getattr(c.cost, field) for c in plan.children):.4f}")
    cost.add_row("[bold]total[/]", f"[bold]{plan.total:.4f}[/]")
    lines = [children, cost]
    if plan.children:
        first = plan.children[0].estimate
        lines.append(Text(
            f"per child: {first.data_files} files ({first.data_bytes / 1e9:.2f} GB), ~{first.requests:,.0f} GETs and "
            f"{first.read_bytes / 1e9:.1f} GB received by the reads"
        ))  # fmt: skip
    lines.append(Text(f"results and the run folder under {plan.results.label}"))
    if plan.image:
        lines.append(Text(f"image: {plan.image}"))
    lines.append(Text("assumptions:", style="bold"))
    lines += [Text(f"  - {line}") for line in plan.assumptions]
    lines.append(Text("estimates (seconds):", style="bold"))
    shown: set[tuple] = set()
    for child in plan.children:
        e = child.estimate
        parts = ", ".join(f"{name} {getattr(e, f'{name}_s'):.0f}" for name in PHASES)
        lines.append(Text(f"  - {child.child.name}: {parts}"))
        if e.basis not in shown:
            shown.add(e.basis)
            lines += [Text(f"      {basis}") for basis in e.basis]
    return Group(*lines)
