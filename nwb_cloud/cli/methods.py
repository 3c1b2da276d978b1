"""``nwb-cloud methods``: the registries (read methods, layouts, workloads, network profiles)."""

from __future__ import annotations


def show(args) -> int:
    from nwb_cloud.access import METHODS
    from nwb_cloud.cloud.profiles import PROFILES
    from nwb_cloud.datasets.layouts import LAYOUTS
    from nwb_cloud.workloads import WORKLOADS

    print("read methods:")
    for method in METHODS.values():
        reason = method.unavailable()
        print(f"  {method.name:24} {method.description}" + (f"  [unavailable: {reason}]" if reason else ""))
    print("layouts:")
    for layout in LAYOUTS.values():
        print(f"  {layout.name:24} {layout.description}")
    print("workloads:")
    for workload in WORKLOADS.values():
        print(f"  {workload.name:24} {workload.description}")
    print("network profiles:")
    for profile in PROFILES.values():
        print(f"  {profile.name:24} {profile.description}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("methods", help="list read methods, layouts, workloads and network profiles")
    parser.set_defaults(handler=show)
