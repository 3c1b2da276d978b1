"""``nwb-cloud recommend``, ``rewrite``, ``fit-model`` and ``guidance``: the layout recommendations as commands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nwb_cloud.errors import NwbCloudError


class BadArguments(NwbCloudError):
    pass


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise BadArguments(f"{what} {text!r} is not a comma-separated list of integers (e.g. 9000,512,512)") from None
    if not values:
        raise BadArguments(f"{what} {text!r} is empty")
    return values


def _megabytes(text: str) -> int:
    """A positive size in MB (argparse type): bytes."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of MB (e.g. 1000)") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"{text!r} MB: give a positive size")
    return int(value * 1e6)


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
    parser.add_argument(
        "--workload",
        action="append",
        default=[],
        metavar="NAME[=WEIGHT]",
        help="a read workload and its weight in the mix (repeat for a mix)",
    )
    parser.add_argument("--profile", default="in-region", help="network profile (default in-region)")
    parser.add_argument("--method", help="read method the costs are for (default: a typical reader)")
    parser.add_argument("--codec", action="append", help="restrict to these codecs (repeatable)")
    parser.add_argument("--backend", default="hdf5", choices=("hdf5", "zarr"))
    parser.add_argument(
        "--results", type=Path, help="fit the model to this asv results folder instead of the shipped one"
    )
    parser.add_argument("--model", type=Path, help="a model file written by `nwb-cloud fit-model`")
    parser.add_argument(
        "--memory-limit",
        type=_megabytes,
        metavar="MB",
        help="flag the layout if its write buffer or one read holds more than this (default 1000 MB)",
    )
    parser.add_argument("--json", action="store_true", help="print the full recommendation as JSON")  # fmt: skip


def register(subparsers) -> None:
    parser = subparsers.add_parser("recommend", help="recommend a chunk shape and codec for a workload mix")
    parser.add_argument("file", nargs="?", type=Path, help="an existing NWB file (with --series)")
    parser.add_argument("--series", help="the series in the file, e.g. acquisition/TwoPhotonSeries")
    parser.add_argument("--shape", help="shape of the data, e.g. 9000,512,512")
    parser.add_argument("--dtype", help="dtype of the data, e.g. uint16")
    parser.add_argument("--modality", help="ecephys or ophys (inferred from the workloads when left out)")
    _recommend_options(parser)
    parser.set_defaults(handler=recommend_command)

    parser = subparsers.add_parser("rewrite", help="rewrite an NWB file with one series in a new layout (verified)")
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--series", required=True, help="the series to re-chunk, e.g. acquisition/ElectricalSeries")
    parser.add_argument("--chunks", help="chunk shape, e.g. 512,32,32 (with --codec)")
    parser.add_argument("--recommend", action="store_true", help="use the recommendation for --workload/--profile")
    parser.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists (never the input)")
    parser.add_argument("--modality", help=argparse.SUPPRESS)
    _recommend_options(parser)
    parser.set_defaults(handler=rewrite_command, shape=None, dtype=None, file=None)

    parser = subparsers.add_parser("fit-model", help="fit the cost model to asv results and save it")
    parser.add_argument("--results", type=Path, default=Path("results"), help="asv results folder (default results)")
    parser.add_argument("--out", type=Path, help="model file (default: the one the package ships)")
    parser.add_argument("--no-check", action="store_true", help="skip the recommendations-vs-measured check")
    parser.set_defaults(handler=fit_model_command)

    parser = subparsers.add_parser("guidance", help="write reports/guidance.html from the results")
    parser.add_argument("--results", type=Path, default=Path("results"), help="asv results folder (default results)")
    parser.add_argument("--out", type=Path, default=Path("reports"), help="where guidance.html goes (default reports)")
    parser.set_defaults(handler=guidance_command)
