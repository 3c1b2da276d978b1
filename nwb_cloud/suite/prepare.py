"""Preparing a run: the data in the store, what each read method needs beside it, and the state file."""

from __future__ import annotations

import math
import time
import uuid

from nwb_cloud.access import METHODS, Unsupported, get_method
from nwb_cloud.access.base import PAGED
from nwb_cloud.analysis import floor_for, measure_loopback_throughput
from nwb_cloud.analysis.decode import codec_speeds, decoder_speeds
from nwb_cloud.cloud.profiles import PROFILES
from nwb_cloud.datasets.catalog import DANDI_ASSETS, Catalog, prepare_dandi, prepare_embedded
from nwb_cloud.datasets.layouts import (
    CORE,
    LAYOUTS,
    NEUROCONV_DEFAULT,
    QUICK_LAYOUTS,
    SHAPES,
    WORKLOAD_FRIENDLY,
    layouts_for,
)
from nwb_cloud.refs import inflate
from nwb_cloud.settings import Settings, usable_cores
from nwb_cloud.suite.state import Block, Grid, RunState
from nwb_cloud.workloads import WORKLOADS, get_workload

REPEATS = {"tiny": 2, "quick": 3, "full": 2}  # cold samples per cell, each in a process of its own
# The headline cells (every method on the core layouts under the main profile: the methods table, and the
# study's seed reads on the core layouts) take more: their median, IQR and rank between passes are published.
HEADLINE_SAMPLES = {"tiny": 2, "quick": 5, "full": 5}
# Every method is measured under the main profile; these under lab as well (the network-bound contrast).
EVERYWHERE = ["fsspec", "remfile", "kerchunk"]
# The suite's reader, whose goals hold under every network profile (issue 13): its seed reads on the core
# layouts under every profile of the run, at a few seconds a run; these profiles only it visits in a quick run.
READER, READER_ONLY_PROFILES = "nwb-index", ["cross-region"]
# The layout study's methods: the two that labs use most, and the reference-index reader when it exists.
STUDY_METHODS = ["fsspec", "remfile", "nwb-index"]
QUICK_METHODS = ["fsspec", "remfile"]  # a quick run's layout block: the two h5py readers labs use most
# Configurations of another row (its cache or its threads), not other methods: a quick run gives them
# REPEATS samples where the methods take HEADLINE_SAMPLES, and reads paged files with and without a page
# buffer through their base rows only (a page buffer turns every reader's metadata reads into page reads).
CONFIGURATIONS = ["fsspec-blockcache", "fsspec-first", "fsspec-none", "remfile-threads"]
# Opening the session file (hundreds of small objects): the everywhere and study methods, and fsspec with a
# block cache, the one-line change that matters most there. The cache-less readers (fsspec-none, -https, ...)
# take 1-3 min a sample on the paged session file and add nothing the default fsspec does not already show.
SESSION_METHODS = list(dict.fromkeys([*EVERYWHERE, *STUDY_METHODS, "fsspec-blockcache"]))
# Rows a quick run leaves out altogether (reads, opens, first use), each because a kept row (or the study)
# shows what it shows (see default_grid):
# * hdmf-zarr-unconsolidated: ~25 s a sample in-region; the study's zarr-open block measures its open;
# * fsspec-none (no cache): no peer documents it (nwb_benchmarks' "no cache" is fsspec's default read-ahead,
#   the fsspec row). In quick run 20261204T213511-83a41b it moved the same bytes as fsspec-first in each
#   read cell and read within 6 % of it in three of four (the fourth: 2 of 3 samples 0.34 s, one 0.14 s,
#   against 0.12 s); its open cost 4.35/5.06 s to fsspec-first's 3.83/4.60. It cost ~2 min a run.
QUICK_LEFT_OUT = ["hdmf-zarr-unconsolidated", "fsspec-none"]
# Rows a quick run measures opening only (the opens and the first use), not reading, because a kept row
# reads as they do; the text is the report's reason for their read cells (no figures: the report's figures
# come from results):
# * fsspec-first: its reads move the bytes remfile's do (150 / 159 MB, 27 / 27 MB, 0.4-0.7 / 1.1-1.7 MB) and
#   took 0.90-1.16x remfile's time in each read cell of quick runs 43b165, eaa0d8 and c40722; what sets it
#   apart is its 3.7-4.7 s open, which its open cells and first use keep. Its reads cost ~1 min a run.
QUICK_OPENS_ONLY = {
    "fsspec-first": "a quick run measures fsspec-first opening (its open cells and its first use), not reading: "
    "its reads fetch the bytes remfile's do, in about remfile's time (measured by earlier quick runs)",
}
MAIN_PROFILE = "in-region"
# The seed's two reads and the opens: what every method is measured on (the opposing reads and the session
# open are measured by fewer methods, see the blocks below).
SEED_WORKLOADS = ("ophys_patch", "ecephys_electrode", "open_ophys", "open_ecephys")
PROFILES_BY_SIZE = {
    "tiny": ["loopback", "in-region"],
    "quick": ["in-region", "cross-region", "lab"],
    "full": list(PROFILES),
}


def default_grid(settings: Settings) -> Grid:
    """The grid of a run: a union of named blocks (sub-grids), so that its cost is chosen, not a product.

    Every sample is a cold read in a process of its own (:mod:`nwb_cloud.suite.asv_grid`). The headline
    blocks take ``HEADLINE_SAMPLES`` (5) samples a cell, the others ``REPEATS`` (3 in a quick run).

    quick (and tiny):

    * ``methods``/``headline`` (reads): every method's reads on the two core layouts under the main profile
      (the base rows; the open-only variants would repeat their base's time); the methods take
      ``HEADLINE_SAMPLES``, the ``CONFIGURATIONS`` of a method (its cache or threads) ``REPEATS``;
    * ``methods-open``/``headline-open``: every method's opens (the labelled open variants included, e.g.
      ``nwb-index-warm``) of NeuroConv's default layout under the main profile, samples as above;
    * ``profiles``: the ``EVERYWHERE`` methods' seed reads under the other profiles but cross-region (lab);
    * ``reader-profiles``: the ``READER``'s seed reads under the other profiles (cross-region, lab), where
      its goals hold too;
    * ``paged``: every h5py-based method (not its configurations) with and without its HDF5 page buffer
      (``-pagebuf``) on the paged default layout, the seed reads (see :mod:`nwb_cloud.access._h5py`);
    * ``session``: the ``SESSION_METHODS`` (and their page-buffer variants on the paged file) opening the
      session file;
    * ``first_use``: a fresh python to the ophys patch's data, every method and the local h5py baseline.

    Left out of a quick run because they show nothing the kept cells (or the study) do not:

    * the ``loopback`` profile (no network: the client's own cost, which every cell now records as client
      CPU seconds per read; tiny runs keep it, tests need no shaping);
    * the other quick layouts (Blosc, paged) read by fsspec and remfile, and the opposing reads (clip,
      window): the study reads every layout with every workload;
    * the opens of the workload-friendly layout, and of the paged seed files (opening reads metadata, which
      the chunk shape of one series barely changes; the session file is where paging acts on opening), and
      the opens under lab;
    * the ``QUICK_LEFT_OUT`` rows, from every block and the first use: ``hdmf-zarr-unconsolidated`` (~25 s a
      sample; the study's zarr-open block) and ``fsspec-none`` (reads as ``fsspec-first`` does; see there);
    * the page-buffer variants of the configurations (``fsspec-first``, ``remfile-threads``): a page
      buffer turns their reads into page reads, as it does their base row's;
    * the reads of the ``QUICK_OPENS_ONLY`` rows: ``fsspec-first`` reads as remfile does (see there);
    * ``fsspec`` (read-ahead, no page buffer) opening the session file: 15 s a sample on the default layout
      and 51 s on the paged one at quick size, the pathology the study measures at full size (16.5 s and
      154 s in run 511d1d); its page-buffer variant is measured, and ``fsspec-blockcache``, which cures it.

    What a quick run costs on this 2-core machine, measured by quick run 20261204T213511-83a41b (c69f3e66,
    idle): 26 min from preparing to its run info, 25 of them measuring: 12.2 min the timed reads, 6.8 min the
    untimed fresh open before each (a cold read needs its own open: hdmf-zarr's ~5 s and fsspec's ~1.5 s are
    paid per sample), 1.7 min process starts and the passes a 3-sample cell sits out, 3.2 min first uses,
    1.0 min conversion, 0.3 min index builds. Without the ``QUICK_LEFT_OUT`` rows, quick run
    20261204T235654-0eeea4 (c98a2504, idle) took 23 min, 22 measuring (asv: 9.7 min the ophys patch reads,
    5.0 the electrode reads, 3.9 the opens, 2.0 first uses, 0.7 conversion, 0.3 index builds), and ~1.5 min
    of publishing. Quick run 20261205T130120-43b165 (f8791d4b, idle) took 22 min from preparing to its run
    info (asv: 9.6 min the ophys patch reads, 4.9 the electrode reads, 3.6 the opens, 1.8 first uses, 0.6
    conversion, 0.25 index builds; of the reads and opens, 11.3 min timed, 5.7 the untimed opens, ~3.6 the
    processes around them) and 1.1 min of publishing: ``make bench`` 23.1 min. Since 5746d85 asv runs no
    combination of a class's params that the grid does not measure (~2,800 forks of ~11 ms each: ~30 s), and
    since b59eb6a a sample's teardown no longer walks the forkserver's objects (93 -> 3 ms a sample): quick run
    20261205T133746-eaa0d8 took 20.7 min from preparing to its run info, ``make bench`` 21.8 min. Without the
    reads of ``fsspec-first`` and stock fsspec's open of the session file, quick run 20261205T181516-0c8627
    (6d7a4071, idle) took 18.8 min from preparing to its run info (asv publish included) and ``make bench``
    19.7 min with the report. Most of it is the five fresh-process samples of every method's headline cells
    and the untimed open before each read (hdmf-zarr's ~4.7 s). Every run states its own length.

    full, the layout study (the comparison of every method is the quick run's): the ``STUDY_METHODS`` on the
    core layouts and the chunk-shape sweep with every workload (the opposing reads included), on the codec
    sweep with the seed's two reads (opening does not depend on the codec), and on the paged layouts (with
    the page-buffer variants of the h5py methods); the Zarr readers on the native Zarr layouts; the
    ``SESSION_METHODS`` opening the session file (default and paged). All of it in-region, and the seed
    reads on the small shapes under lab as well, where the network binds.

    Method variants that differ only in how they open (``Method.varies == "opens"``) are measured on the
    open workloads only: a read's open is untimed, so there they would repeat their base method's time (and
    an unconsolidated Zarr open costs ~25 s a sample in-region). Page-buffer variants apply to paged layouts
    only (``Grid.applies``).

    What a run costs is stated by the run itself (README's runs block, from its run info), not here. The
    longest cells are a seed read on the layouts made for the other read (one electrode from all-channel
    chunks moves the whole file) and the opposing reads on small chunks (a 30-frame clip touches 256-1,024
    chunks: one request each).
    """
    if settings.source == "dandi":  # real S3: the network is what it is, and the layout is as published
        workloads = [w for w, row in WORKLOADS.items() if row.modality in DANDI_ASSETS]
        return Grid(workloads, list(METHODS), ["as-published"], ["aws"], REPEATS[settings.size])
    if settings.size == "full":
        return study_grid()
    profiles = PROFILES_BY_SIZE[settings.size]
    headline = HEADLINE_SAMPLES[settings.size]
    methods = [m for m in METHODS if m not in QUICK_LEFT_OUT]
    bulk = [w for w, row in WORKLOADS.items() if row.modality != "session"]
    seed = [w for w in bulk if w in SEED_WORKLOADS]
    session = [w for w, row in WORKLOADS.items() if row.modality == "session"]
    core = [layout.name for layout in CORE]
    reads, opens = _reads_and_opens(seed)
    read_methods = [m for m in _read_methods() if m in methods and m not in QUICK_OPENS_ONLY]
    paged = [name for name in QUICK_LAYOUTS if LAYOUTS[name].page_size]
    others = [p for p in profiles if p != MAIN_PROFILE]
    session_layouts = layouts_for("session", QUICK_LAYOUTS)
    session_methods = _with_page_buffer(_known(SESSION_METHODS))
    headline_methods = [m for m in read_methods if m not in CONFIGURATIONS]
    opened = list(methods)
    headline_opens = [*headline_methods, *(m for m in opened if METHODS[m].variant_of in headline_methods)]
    main = [MAIN_PROFILE]
    blocks = [
        Block("methods", workloads=reads, methods=read_methods, layouts=core, profiles=main,
              leaves_out={m: why for m, why in QUICK_OPENS_ONLY.items() if m in methods}),
        Block("headline", workloads=reads, methods=headline_methods, layouts=core, profiles=main, samples=headline),
        Block("methods-open", workloads=opens, methods=opened, layouts=[NEUROCONV_DEFAULT], profiles=main),
        Block("headline-open", workloads=opens, methods=headline_opens, layouts=[NEUROCONV_DEFAULT], profiles=main,
              samples=headline),
        Block("profiles", workloads=reads, methods=_known(EVERYWHERE), layouts=core,
              profiles=[p for p in others if p not in READER_ONLY_PROFILES]),
        Block("reader-profiles", workloads=reads, methods=_known([READER]), layouts=core, profiles=others),
        Block("paged", workloads=reads, methods=_with_page_buffer([m for m in _h5py_methods() if m in
              headline_methods]), layouts=paged, profiles=main),
        Block("session", workloads=session, methods=[m for m in session_methods if m != "fsspec"],
              layouts=session_layouts, profiles=[MAIN_PROFILE]),
    ]  # fmt: skip
    return Grid(
        workloads=list(WORKLOADS),
        methods=methods,
        layouts=_union(core, QUICK_LAYOUTS),
        profiles=profiles,
        repeat=REPEATS[settings.size],
        blocks=blocks,
        first_use=_first_use([m for m in methods if METHODS[m].varies != PAGED]),
    )


def study_grid() -> Grid:
    """The full-size layout study (see :func:`default_grid`)."""
    bulk = [w for w, row in WORKLOADS.items() if row.modality != "session"]
    seed = [w for w in bulk if w in SEED_WORKLOADS]
    seed_reads = [w for w in seed if WORKLOADS[w].select is not None]
    session = [w for w, row in WORKLOADS.items() if row.modality == "session"]
    core = [layout.name for layout in CORE]
    shapes = [f"{modality}-{'x'.join(map(str, shape))}" for modality, rows in SHAPES.items() for shape, _ in rows]
    codecs = [name for name in LAYOUTS if "-neuroconv-" in name or "-friendly-" in name]
    paged = [name for name, layout in LAYOUTS.items() if layout.page_size and name not in core]
    zarr = [name for name, layout in LAYOUTS.items() if layout.backend == "zarr"]
    zarr_methods = [name for name, method in METHODS.items() if "zarr" in method.formats]
    readers = _read_methods()
    zarr_readers = [name for name in zarr_methods if name in readers]
    bulk_reads, bulk_opens = _reads_and_opens(bulk)
    study, sessions = _known(STUDY_METHODS), _known(SESSION_METHODS)
    main = [MAIN_PROFILE]
    blocks = [
        Block("headline", workloads=seed_reads, methods=study, layouts=core, profiles=main,
              samples=HEADLINE_SAMPLES["full"]),
        Block("shapes", workloads=bulk, methods=study, layouts=[*core, *shapes], profiles=main),
        Block("shapes-lab", workloads=seed_reads, methods=study, layouts=[*core, *_small(shapes)], profiles=["lab"]),
        Block("codecs", workloads=seed_reads, methods=study, layouts=codecs, profiles=main),
        Block("paged", workloads=bulk, methods=_with_page_buffer(study), layouts=paged, profiles=main),
        Block("zarr", workloads=bulk_reads, methods=zarr_readers, layouts=zarr, profiles=main),
        Block("zarr-open", workloads=bulk_opens, methods=zarr_methods, layouts=zarr, profiles=main),
        Block("session", workloads=session, methods=_with_page_buffer(sessions), layouts=layouts_for("session"),
              profiles=main),
    ]  # fmt: skip
    return Grid(
        workloads=list(WORKLOADS),
        methods=list(METHODS),
        layouts=list(LAYOUTS),
        profiles=[MAIN_PROFILE, "lab"],
        repeat=REPEATS["full"],
        blocks=blocks,
    )


def _first_use(methods: list[str]) -> Block:
    """The first use in a fresh process: ``methods`` (a quick run's, but the page-buffer variants; the
    warm-index variant included: a returning user's first read), the ophys patch on the workload-friendly
    layout in-region (a small read, so the figure is the imports and the open a user pays first), and the
    local baseline."""
    return Block("first-use", workloads=["ophys_patch"], methods=methods, layouts=[WORKLOAD_FRIENDLY],
                 profiles=[MAIN_PROFILE])  # fmt: skip


def _h5py_methods() -> list[str]:
    """The h5py-based methods: the rows with a page-buffer variant (see ``nwb_cloud.access._h5py``)."""
    return [m.variant_of for m in METHODS.values() if m.varies == PAGED]


def _with_page_buffer(methods: list[str]) -> list[str]:
    """``methods`` and the page-buffer variant of each that has one (registry order)."""
    variants = [n for n, m in METHODS.items() if m.varies == PAGED and m.variant_of in methods]
    return [*methods, *variants]


def _reads_and_opens(workloads) -> tuple[list[str], list[str]]:
    """The workloads that read a selection, and those that only open the file."""
    reads = [w for w in workloads if WORKLOADS[w].select is not None]
    return reads, [w for w in workloads if w not in reads]


def _read_methods() -> list[str]:
    """The methods measured on reads: every one but the variants that differ only in how they open."""
    return [name for name, method in METHODS.items() if method.variant_of is None]


def _small(shapes: list[str]) -> list[str]:
    """The shapes of at most ~2 MB and fewer than all channels / whole frames: under lab, a seed read on the
    others moves hundreds of MB per sample (20-25 s), and the quick run already shows they lose there."""
    small = []
    for name in shapes:
        layout = LAYOUTS[name]
        ((modality, chunks),) = layout.chunks.items()
        whole = chunks[-1] >= 384 if modality == "ecephys" else chunks[-1] >= 512
        if not whole and math.prod(chunks) * 2 <= 2_100_000:
            small.append(name)
    return small


def _known(methods) -> list[str]:
    return [m for m in methods if m in METHODS]


def _union(*groups) -> list[str]:
    return list(dict.fromkeys(name for group in groups for name in group))


def prepare_run(
    settings: Settings,
    store,
    grid: Grid | None = None,
    progress: bool = True,
    log=print,
    key_prefix: str = "",
    extend=None,
) -> RunState:
    """The data in ``store`` (objects under ``key_prefix``), what each method needs beside it, the state file.

    ``extend(catalog, grid, log) -> dict`` (a higher layer's run step, e.g. the closed loop of
    :mod:`nwb_cloud.recommend.loop`) runs once the grid's own files are in the store: it may add assets to
    the catalog and blocks (with their layouts and methods) to the grid, which are then prepared and bounded
    like the grid's own; what it returns is kept in the state's ``extra`` (and so in the run info).
    """
    grid = grid or default_grid(settings)
    for method in grid.methods:
        get_method(method)  # an unknown name fails here, before any work
    extra = {"prepare_started": time.time()}  # the run id is stamped once preparing ends: the run's length starts here
    if settings.source == "dandi":
        catalog = prepare_dandi()
    else:
        catalog = Catalog(store=store, source="embedded", size=settings.size, seed=settings.seed)
        workers = usable_cores()  # nothing is timed while the files are written
        for modality, layouts in grid.assets().items():  # only the files some measured cell reads
            written = prepare_embedded(
                store,
                settings.data_dir,
                settings.size,
                settings.seed,
                [modality],
                layouts,
                progress,
                log,
                workers,
                key_prefix,
            )
            catalog.assets.update(written.assets)
        log("decode speed of every codec on this machine (one NeuroConv-default chunk per modality)")
        extra["codecs"] = codec_speeds(settings.size, settings.seed)
        log("the inflate decoders on this machine (the table nwb-index chooses its decoder from)")
        extra["decoders"] = decoder_speeds(settings.size, settings.seed)
        inflate.save_table(settings.data_dir / inflate.TABLE_FILE, extra["decoders"])
    if extend is not None:
        extra.update(extend(catalog, grid, log))
        for method in grid.methods:
            get_method(method)
    unsupported: dict[str, str] = {}
    failures = prepare_methods(catalog, grid.methods, log=log, grid=grid, unsupported=unsupported)
    floors = prepare_floors(catalog, grid, settings.data_dir, log=log) if settings.source == "embedded" else []
    state = RunState(
        catalog=catalog,
        grid=grid,
        data_dir=str(settings.data_dir),
        run_id=f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}",
        extra={"prepare_failures": failures, "prepare_unsupported": unsupported, "floors": floors, **extra},
    )
    state.save(settings.state_path)
    return state


def prepare_floors(catalog, grid, data_dir, log=print) -> list[dict]:
    """Measure loopback throughput and every cell's physical bound once, before asv's processes need them."""
    if not catalog.assets:
        return []
    largest = max(catalog.assets.values(), key=lambda a: a.size_bytes)
    throughput = measure_loopback_throughput(catalog.store, largest.key, data_dir)
    log(f"loopback throughput of the endpoint: {throughput / 1e6:.0f} MB/s (one connection)")
    floors = []
    for workload_name in grid.workloads:
        workload = get_workload(workload_name)
        for layout in grid.layouts_of(workload_name):
            measured = [
                p for p in grid.profiles if any(not grid.excludes(m, p, workload_name, layout) for m in grid.methods)
            ]
            if not measured:
                continue
            asset = catalog.asset(workload.modality, layout)
            summary = []
            for profile in measured:
                floor = floor_for(asset, workload, profile, data_dir)
                floors.append({**floor.to_dict(), "layout": layout, "modality": workload.modality})
                summary.append(f"{profile} {floor.seconds * 1e3:.0f} ms ({floor.binding})")
            log(f"  bound of {workload_name} on {layout}: " + ", ".join(summary))
    return floors


def prepare_methods(
    catalog, methods, log=print, grid: Grid | None = None, unsupported: dict | None = None
) -> dict[str, str]:
    """Build what methods need beside each asset (indexes, JSON, copies); a failure is kept for its cells.

    With ``grid``, only for the assets the grid reads with that method (a Zarr copy of every study file
    would cost more than the study). An asset the method cannot represent (``access.Unsupported``) goes into
    ``unsupported`` (``method|asset`` -> reason) instead of the failures, when given.
    """
    failures: dict[str, str] = {}
    for name in methods:
        method = get_method(name)
        if method.prepare is None or method.unavailable():
            continue
        for asset in catalog.assets.values():
            if grid is not None and not grid.measures(name, asset.modality, asset.layout):
                continue
            started = time.perf_counter()
            try:
                method.prepare(catalog.store, asset.key, asset.local_path)
            except Unsupported as error:
                kept = unsupported if unsupported is not None else failures
                kept[f"{name}|{asset.name}"] = f"{type(error).__name__}: {error}".splitlines()[0][:300]
                log(f"  {name} cannot represent {asset.name}: {kept[f'{name}|{asset.name}']}")
            except Exception as error:  # noqa: BLE001 - recorded as that cell's failure, shown in the report
                failures[f"{name}|{asset.name}"] = f"{type(error).__name__}: {error}".splitlines()[0][:300]
                log(f"  {name} cannot read {asset.name}: {failures[f'{name}|{asset.name}']}")
            else:
                log(f"  {name}: prepared {asset.name} in {time.perf_counter() - started:.1f} s")
    return failures
