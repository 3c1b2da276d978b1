"""``nwb-cloud methods``: the registries (read methods, layouts, workloads, network profiles)."""

from __future__ import annotations

import json

from nwb_cloud.cli._options import add


def show(args) -> int:
    from nwb_cloud.access import METHODS
    from nwb_cloud.cloud.profiles import PROFILES
    from nwb_cloud.datasets.layouts import LAYOUTS
    from nwb_cloud.workloads import WORKLOADS

    registries = {
        "read methods": [
            {"name": m.name, "description": m.description, "unavailable": m.unavailable() or None}
            for m in METHODS.values()
        ],
        "layouts": [{"name": layout.name, "description": layout.description} for layout in LAYOUTS.values()],
        "workloads": [{"name": w.name, "description": w.description} for w in WORKLOADS.values()],
        "network profiles": [{"name": p.name, "description": p.description} for p in PROFILES.values()],
    }
    if args.json:
        print(json.dumps(registries, indent=1))
        return 0
    for title, rows in registries.items():
        print(f"{title}:")
        for row in rows:
            unavailable = f"  [unavailable: {row['unavailable']}]" if row.get("unavailable") else ""
            print(f"  {row['name']:24} {row['description']}{unavailable}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("methods", help="list read methods, layouts, workloads and network profiles")
    add(parser, "--json", action="store_true", help="print the registries as JSON")
    parser.set_defaults(handler=show)
