"""``nwb-cloud serve``: keep the embedded endpoint up (with the run prepared) for asv or a notebook."""

from __future__ import annotations

import argparse
import threading

from nwb_cloud.cli._common import add_settings_arguments, embedded_store, settings_from
from nwb_cloud.cli._options import add, integer, number

# what `nwb-cloud bench` runs (nwb_cloud.suite.asv_driver), typed in a shell of the checkout
ASV_RUN = (
    "asv run -E existing:.venv/bin/python --set-commit-hash $(git rev-parse HEAD) --machine $(hostname) "
    "--show-stderr --record-samples"
)


def serve(args) -> int:
    from nwb_cloud.suite.prepare import prepare_run

    settings = settings_from(args)
    with embedded_store(settings, port=args.port) as (endpoint, store):
        print(f"embedded S3 endpoint {endpoint.url}, bucket {store.bucket}, data in {settings.data_dir / 's3'}")
        if not args.no_prepare:
            prepare_run(settings, store)
            print(f"run state (with this endpoint's credentials): {settings.state_path}")
            print(f"asv by hand: NWB_CLOUD_STATE={settings.state_path} {ASV_RUN}")
        print("serving; Ctrl-C stops", flush=True)
        threading.Event().wait(args.seconds)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("serve", help="run the embedded S3 endpoint (and prepare the run) until Ctrl-C")
    add_settings_arguments(parser)
    add(parser, "--port", value=integer(1, 65535, 9000), help="port on 127.0.0.1 (default: a free one)")
    add(parser, "--no-prepare", action="store_true", help="serve only; do not generate or upload data")
    parser.add_argument("--seconds", type=number(0, above=True), default=None, help=argparse.SUPPRESS)
    parser.set_defaults(handler=serve)
