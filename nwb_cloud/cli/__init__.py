"""The ``nwb-cloud`` command: a thin layer over the package.

Every module of this package that defines ``register(subparsers)`` adds its commands; each command parser
sets ``handler=callable(args) -> int``. A :class:`~nwb_cloud.errors.NwbCloudError` becomes one line on
stderr and exit code 2; Ctrl-C exits 130 and SIGTERM 143, after the command's own clean-up has run, and
even when a library swallowed the interruption (:mod:`nwb_cloud.processes`).
"""

from __future__ import annotations

import importlib
import pkgutil
import signal
import sys

from nwb_cloud import __version__, processes
from nwb_cloud.cli._options import OneLineParser
from nwb_cloud.errors import NwbCloudError

EXIT_USER_ERROR = 2


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="nwb-cloud",
        description="Convert, store and read NWB data in the cloud, and measure how fast: one command per job. "
        "Results go to stdout, progress to stderr; a wrong value is one line and exit code 2.",
    )
    parser.add_argument("--version", action="version", version=f"nwb-cloud {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # a malformed value (2) or --help (0): a code, in-process too
        return int(exit_.code or 0)
    try:
        with processes.stopping_on_signals():
            code = int(args.handler(args) or 0)
            processes.stop_if_interrupted()  # a signal a library swallowed still stops with its exit code
        return code
    except NwbCloudError as error:
        print(f"nwb-cloud {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as interrupt:
        name = signal.Signals(processes.exit_code(interrupt) - 128).name
        print(f"nwb-cloud: interrupted ({name}); finished work is kept, a re-run resumes", file=sys.stderr)
        return processes.exit_code(interrupt)
