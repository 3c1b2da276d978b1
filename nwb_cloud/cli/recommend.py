"""``nwb-cloud recommend``, ``rewrite``, ``fit-model`` and ``guidance``: the layout recommendations as commands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nwb_cloud.cli._options import (
    DTYPE,
    FOLDER,
    MEGABYTES,
    METHOD,
    NAMES_ONE,
    OUTPUT_FILE,
    PROFILE,
    SERIES,
    SHAPE,
    WEIGHTED_WORKLOAD,
    add,
    existing_file,
)
from nwb_cloud.errors import NwbCloudError


class BadArguments(NwbCloudError):
    pass


def _ints(text, what: str) -> tuple[int, ...]:
    if isinstance(text, tuple):  # already checked while parsing (--shape, --chunks)
        return text
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise BadArguments(f"{what} {text!r} is not a comma-separated list of integers (e.g. 9000,512,512)") from None
    if not values:
        raise BadArguments(f"{what} {text!r} is empty")
    return values


def _model(args):
    from nwb_cloud.recommend import CostModel, default_model, fit, load_measurements

    if getattr(args, "results", None):
        return fit(load_measurements(args.results)).model
    if getattr(args, "model", None):
        return CostModel.load(args.model)
    return default_model()


def _dataset(args):
    if args.file and args.shape:
        raise BadArguments("give either an NWB file or --shape, not both")
    if args.file:
        if not args.series:
            raise BadArguments("an NWB file needs --series (e.g. acquisition/TwoPhotonSeries)")
        return (str(args.file), args.series)
    if not args.shape or not args.dtype:
        raise BadArguments(
            "give an NWB file with --series, or --shape and --dtype (e.g. --shape 9000,512,512 --dtype uint16)"
        )
    return (_ints(args.shape, "--shape"), args.dtype, *([args.modality] if args.modality else []))


def _recommendation(args, dataset):
    from nwb_cloud.recommend import recommend

    if not args.workload:
        raise BadArguments("name at least one --workload (e.g. --workload ophys_patch=0.7)")
    return recommend(
        dataset,
        args.workload,
        args.profile,
        method=args.method,
        codecs=args.codec or None,
        backend=args.backend,
        model=_model(args),
        **({"memory_limit_bytes": args.memory_limit} if args.memory_limit else {}),
    )


def recommend_command(args) -> int:
    recommendation = _recommendation(args, _dataset(args))
    for warning in recommendation.warnings:  # on stderr, also with --json: a script's reader sees it too
        print(f"nwb-cloud recommend: warning: outside the fitted range: {warning}", file=sys.stderr)
    if args.json:
        print(recommendation.model_dump_json(indent=1))
        return 0
    print(recommendation.summary())
    print("  best chunk shape per codec:")
    for choice in recommendation.best_per_codec:
        print(f"    {choice.codec:<22} {str(choice.chunk_shape):<20} {choice.weighted_seconds:.3g} s"
              f"  (ratio ~{choice.compression_ratio:.2f})")  # fmt: skip
    print(f"  model: {recommendation.model_source}")
    for note in recommendation.notes:
        print(f"  note: {note}")
    return 0


def rewrite_command(args) -> int:
    from nwb_cloud.recommend import rewrite

    if args.recommend == bool(args.chunks or args.codec):
        raise BadArguments("give either --recommend (with --workload/--profile) or --chunks and --codec")
    recommendation = None
    if args.recommend:
        args.file, args.shape = args.input, None
        recommendation = _recommendation(args, _dataset(args))
        chunks, codec = recommendation.chunk_shape, recommendation.codec
    else:
        if not (args.chunks and args.codec) or len(args.codec) > 1:
            raise BadArguments("--chunks goes with exactly one --codec")
        chunks, codec = _ints(args.chunks, "--chunks"), args.codec[0]
    report = rewrite(args.input, args.output, args.series, chunk_shape=chunks, codec=codec, overwrite=args.overwrite)
    if args.json:
        print(report.model_dump_json(indent=1))
        return 0
    print(f"rewrote {report.series} of {report.source}: chunks {report.chunks_before} {report.codec_before} -> "
          f"{report.chunk_shape} {report.codec}")  # fmt: skip
    print(f"  {report.output}: {report.size_after / 1e6:.1f} MB (was {report.size_before / 1e6:.1f} MB), "
          f"{report.seconds:.1f} s; every object and attribute verified equal to the source")  # fmt: skip
    return 0


def fit_model_command(args) -> int:
    from nwb_cloud.recommend import MODEL_PATH, check_recommendations, check_summary, fit, load_measurements
    from nwb_cloud.recommend.check import save_check

    measurements = load_measurements(args.results)
    fitted = fit(measurements)
    out = fitted.model.save(args.out or MODEL_PATH)
    print(f"model: {fitted.model.source}")
    print(json.dumps(fitted.summary(), indent=1))
    for note in measurements.notes + [f"{n} cell(s) left out: {why}" for why, n in fitted.left_out.items()]:
        print(f"note: {note}")
    if not args.no_check:
        table = check_recommendations(measurements)
        summary = check_summary(table)
        print("recommendations vs measured best:", json.dumps(summary, indent=1))
        print(f"written: {save_check(args.results, fitted.model.source, summary, table)} (shown by `nwb-cloud report`)")
    print(f"written: {out}")
    return 0


def guidance_command(args) -> int:
    from nwb_cloud.recommend import write_guidance

    print(f"guidance: {write_guidance(args.results, args.out)}")
    return 0


def _recommend_options(parser) -> None:
    add(parser, "--workload", value=WEIGHTED_WORKLOAD, action="append", default=[], metavar="NAME[=WEIGHT]",
        help="a read workload and its weight in the mix (repeat for a mix)")  # fmt: skip
    add(parser, "--profile", value=PROFILE, default="in-region", help="network profile, not AWS's (default in-region)")
    add(parser, "--method", value=METHOD, help="read method the costs are for (default: a typical reader)")
    add(parser, "--codec", value=NAMES_ONE, action="append", help="restrict to these codecs (repeatable)")
    add(parser, "--backend", default="hdf5", choices=("hdf5", "zarr"), help="the file format (default hdf5)")
    add(parser, "--results", value=FOLDER, help="fit the model to this asv results folder, not the shipped one")
    add(parser, "--model", value=existing_file("model.json"), help="a model file written by `nwb-cloud fit-model`")
    add(parser, "--memory-limit", value=MEGABYTES, metavar="MB",
        help="flag the layout if its write buffer or one read holds more than this (default 1000 MB)")  # fmt: skip
    add(parser, "--json", action="store_true", help="print the full recommendation as JSON")


def register(subparsers) -> None:
    parser = subparsers.add_parser("recommend", help="recommend a chunk shape and codec for a workload mix")
    add(parser, "file", nargs="?", value=existing_file("session.nwb"), help="an existing NWB file (with --series)")
    add(parser, "--series", value=SERIES, help="the series in the file")
    add(parser, "--shape", value=SHAPE, help="shape of the data")
    add(parser, "--dtype", value=DTYPE, help="numeric dtype of the data")
    add(parser, "--modality", choices=("ecephys", "ophys"), help="the data's kind (default: from the workloads)")
    _recommend_options(parser)
    parser.set_defaults(handler=recommend_command)

    parser = subparsers.add_parser("rewrite", help="rewrite an NWB file with one series in a new layout (verified)")
    add(parser, "input", value=existing_file("session.nwb"), help="the NWB file to rewrite")
    add(parser, "output", value=OUTPUT_FILE, help="the rewritten file")
    add(parser, "--series", value=SERIES, required=True, help="the series to re-chunk")
    add(parser, "--chunks", value=SHAPE, help="chunk shape (with --codec)")
    add(parser, "--recommend", action="store_true", help="use the recommendation for --workload/--profile")
    add(parser, "--overwrite", action="store_true", help="replace OUTPUT if it exists (never the input)")
    parser.add_argument("--modality", choices=("ecephys", "ophys"), help=argparse.SUPPRESS)
    _recommend_options(parser)
    parser.set_defaults(handler=rewrite_command, shape=None, dtype=None, file=None)

    parser = subparsers.add_parser("fit-model", help="fit the cost model to asv results and save it")
    add(parser, "--results", value=FOLDER, default=Path("results"), help="asv results folder (default results)")
    add(parser, "--out", value=OUTPUT_FILE, help="model file (default: the one the package ships)")
    add(parser, "--no-check", action="store_true", help="skip the recommendations-vs-measured check")
    parser.set_defaults(handler=fit_model_command)

    parser = subparsers.add_parser("guidance", help="write reports/guidance.html from the results")
    add(parser, "--results", value=FOLDER, default=Path("results"), help="asv results folder (default results)")
    add(parser, "--out", value=FOLDER, default=Path("reports"), help="where guidance.html goes (default reports)")
    parser.set_defaults(handler=guidance_command)
