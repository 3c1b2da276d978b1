"""The ``nwb-cloud`` command: a thin layer over the package.

Every module of this package that defines ``register(subparsers)`` adds its commands; each command parser
sets ``handler=callable(args) -> int``. A :class:`~nwb_cloud.errors.NwbCloudError` becomes one line on
stderr and exit code 2; Ctrl-C exits 130 after the command's own clean-up has run.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from nwb_cloud import __version__
from nwb_cloud.errors import NwbCloudError

EXIT_USER_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nwb-cloud", description=__doc__.splitlines()[0])
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
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except NwbCloudError as error:
        print(f"nwb-cloud {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"nwb-cloud {args.command}: interrupted", file=sys.stderr)
        return 130
