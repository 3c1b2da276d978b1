"""``nwb-cloud index``: build, publish, open through, validate and list the NWB reference indexes of S3 objects.

The local cache is ``<data dir>/indexes`` (``--data-dir`` / ``NWB_CLOUD_DATA_DIR``); objects and credentials
are found as ``nwb-cloud read`` finds them.
"""

from __future__ import annotations

import contextlib
import json
import time

from nwb_cloud.cli._common import add_store_arguments, settings_from
from nwb_cloud.cli._options import INDEX_TARGET, OBJECT_URL, S3_URL, add
from nwb_cloud.cli.read import _store_for as _s3_store_for


def _store_for(url: str, args):
    """The store and key of ``url``: ``s3://`` as ``nwb-cloud read`` finds it; an ``https://`` object URL or a
    DANDI API asset URL anonymously (``--endpoint-url`` sends the requests elsewhere)."""
    if url.startswith(("http://", "https://")):
        from nwb_cloud.cloud.urls import store_for_url

        return store_for_url(url, endpoint_url=args.endpoint_url, region=args.region)
    return _s3_store_for(url, args)


# the storage formats of nwb_cloud.refs.storage, spelled out: importing nwb_cloud.refs loads pynwb and zarr,
# which every `nwb-cloud` start (one per batch job step) would then pay for
FORMATS = ("json", "parquet", "auto")


def _cache(args):
    from nwb_cloud.access.nwb_index import CACHE_FOLDER
    from nwb_cloud.refs.cache import IndexCache

    return IndexCache(settings_from(args).data_dir / CACHE_FOLDER)


def build(args) -> int:
    from nwb_cloud.refs import build_index
    from nwb_cloud.refs import sidecar as sidecars
    from nwb_cloud.refs.cache import AssetIdentity
    from nwb_cloud.refs.progress import progress_bar
    from nwb_cloud.refs.storage import chunk_references

    store, key = _store_for(args.url, args)
    cache = _cache(args)
    identity = AssetIdentity.of(store, key)
    index = None if args.rebuild else cache.get(identity)
    if index is None:
        with progress_bar(f"indexing {args.url}") as progress:
            index = build_index(identity.url, storage_options=store.s3fs_options(), progress=progress)
        index = cache.put(identity, index, args.format)
        cost = index["nwb_cloud"]["build"]
        print(
            f"built the index of {args.url} in {cost['seconds']:.1f} s: {cost['fetches']} requests, "
            f"{cost['bytes_fetched'] / 1e6:.1f} MB ({cost['bytes_fetched'] / identity.size:.2%} of the file)"
        )
    else:
        print(f"the cache already holds the index of {args.url} as it is now (--rebuild to build it again)")
    print(f"{chunk_references(index)} chunk references, cached in {cache.directory}")
    if args.publish:
        print(f"published beside the asset: {store.s3_url(sidecars.publish(store, key, index, args.format))}")
    return 0


def open_(args) -> int:
    from nwb_cloud.access.nwb_index import open_found
    from nwb_cloud.refs.fetch import RangeReader
    from nwb_cloud.refs.locate import find_index
    from nwb_cloud.refs.progress import progress_bar

    store, key = _store_for(args.url, args)
    started = time.perf_counter()
    reader = RangeReader(store, key)
    try:
        if args.build:
            with progress_bar(f"indexing {args.url}") as progress:
                found = find_index(store, key, reader, cache=_cache(args), build=True, progress=progress)
        else:
            found = find_index(store, key, reader, cache=_cache(args))
    except BaseException:
        reader.close()
        raise
    with open_found(found, reader, build=args.build, cache=_cache(args)) as opened:
        seconds = time.perf_counter() - started
        nwbfile = opened.nwbfile
        objects = len(nwbfile.objects)
        print(f"opened {args.url} through its index ({found.origin}) in {seconds:.2f} s: {objects} objects")
        for name, series in nwbfile.acquisition.items():
            shape = getattr(getattr(series, "data", None), "shape", None)
            print(f"  acquisition/{name}: {series.neurodata_type} {shape}")
    return 0


def info(args) -> int:
    from nwb_cloud.refs import sidecar as sidecars
    from nwb_cloud.refs.errors import RefsError
    from nwb_cloud.refs.fetch import RangeReader

    cache = _cache(args)
    if args.url:
        store, key = _store_for(args.url, args)
        with contextlib.closing(RangeReader(store, key)) as reader:
            identity = sidecars.head(reader, store, key)
            cached = cache.get(identity)
            try:
                sidecars.resolve(reader, store, key, *sidecars.fetch_document(reader, store, key), parquet_cache=cache)
                sidecar = f"current ({store.s3_url(sidecars.sidecar_key(key))})"
            except RefsError as error:
                sidecar = str(error)
        if args.json:
            print(
                json.dumps(
                    {
                        "url": args.url,
                        "size": identity.size,
                        "etag": identity.etag,
                        "cache": str(cache.directory) if cached is not None else None,
                        "sidecar": sidecar,
                    }
                )
            )
            return 0  # fmt: skip
        print(f"{args.url}: {identity.size} bytes, ETag {identity.etag}")
        print(f"  cache:   {'current index in ' + str(cache.directory) if cached is not None else 'none'}")
        print(f"  sidecar: {sidecar}")
        return 0
    entries = cache.entries()
    if args.json:
        rows = [{"url": e.url, "etag": e.etag, "storage": e.storage, "disk_bytes": e.disk_bytes, "path": str(e.path)}
                for e in entries]  # fmt: skip
        print(json.dumps({"directory": str(cache.directory), "indexes": rows}, indent=1))
        return 0
    print(f"{len(entries)} cached indexes in {cache.directory}")
    for entry in entries:
        what = f"{entry.url}  {entry.etag}" if entry.url else f"(unreadable) {entry.path}"
        print(f"  {entry.storage:7} {entry.disk_bytes / 1e6:8.2f} MB  {what}")
    return 0


def validate(args) -> int:
    """Check an index against the format (docs/index-format.md) and against its asset; non-zero if it fails."""
    from nwb_cloud.refs import build_index
    from nwb_cloud.refs.fetch import RangeReader
    from nwb_cloud.refs.locate import find_index
    from nwb_cloud.refs.validate import load
    from nwb_cloud.refs.validate import validate as check

    if args.target.startswith("s3://"):
        store, key = _store_for(args.target, args)
        with contextlib.closing(RangeReader(store, key)) as reader:
            found = find_index(store, key, reader, cache=_cache(args))
        index, what, asset = found.index, f"the index of {args.target} ({found.origin})", found.identity.url
    else:
        index, what = load(args.target), args.target
        asset = (index.get("templates") or {}).get("u", "") if isinstance(index, dict) else ""
    rebuild = None
    if not args.format_only and isinstance(asset, str) and asset:
        threshold = (index.get("nwb_cloud") or {}).get("build", {}).get("inline_threshold")
        options = {} if threshold is None else {"inline_threshold": threshold}
        if asset.startswith("s3://"):
            store, _ = _store_for(asset, args)
            rebuild = lambda: build_index(asset, storage_options=store.s3fs_options(), **options)  # noqa: E731
        else:
            rebuild = lambda: build_index(asset, **options)  # noqa: E731
    problems = check(index, rebuild)
    if problems:
        print(f"{what}: {len(problems)} problem(s)")
        for problem in problems[:50]:
            print(f"  {problem}")
        return 1
    checked = "the format" + ("" if rebuild is None else f" and its asset {asset}")
    print(f"{what}: valid ({index['nwb_cloud']['format']}; checked against {checked})")
    return 0


def _add_store_arguments(parser) -> None:
    add_store_arguments(parser, data_dir_for="the index cache and the prepared run's state")


def register(subparsers) -> None:
    parser = subparsers.add_parser("index", help="build, publish, open through and list NWB reference indexes")
    commands = parser.add_subparsers(dest="index_command", metavar="INDEX_COMMAND", required=True)

    command = commands.add_parser("build", help="build the index of s3://bucket/key (reading only its metadata)")
    add(command, "url", value=S3_URL, help="the NWB HDF5 file")
    add(command, "--publish", action="store_true", help="also upload it beside the asset as a sidecar")
    add(command, "--format", choices=FORMATS, default="auto", help="how the index is stored (auto: by chunk count)")
    add(command, "--rebuild", action="store_true", help="build again even if the cache has it")
    _add_store_arguments(command)
    command.set_defaults(handler=build)

    command = commands.add_parser("open", help="open an NWB file on S3 as an NWBFile through its index")
    add(
        command,
        "url",
        value=OBJECT_URL,
        help="s3://bucket/key, https://bucket.s3.amazonaws.com/key or a DANDI API asset URL",
    )
    add(command, "--build", action="store_true", help="build a missing index into the cache (progress bar)")
    _add_store_arguments(command)
    command.set_defaults(handler=open_)

    command = commands.add_parser("validate", help="check an index against the format spec and against its asset")
    add(command, "target", value=INDEX_TARGET, help="s3://bucket/key of an asset (its cached or published index), or "
        "the path of an index (.refs.json file or Parquet folder)")  # fmt: skip
    add(command, "--format-only", action="store_true", help="check the format only, not the asset")
    _add_store_arguments(command)
    command.set_defaults(handler=validate)

    command = commands.add_parser("info", help="list the cached indexes (or the state of one object's index)")
    add(command, "url", nargs="?", value=S3_URL, help="an object: its cache entry and sidecar")
    _add_store_arguments(command)
    add(command, "--json", action="store_true", help="print the cache entries (or the object's state) as JSON")
    command.set_defaults(handler=info)
