"""The index as a small library: ``pip install nwb-cloud[index]`` and ``import nwb_cloud.access.nwb_index``
bring in what opening and reading through the index needs, and none of the benchmark or conversion stacks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from nwb_cloud.cloud import upload

ROOT = Path(__file__).parent.parent
HEAVY = {"asv", "neuroconv", "lindi", "matplotlib", "remfile", "obstore", "kerchunk", "spikeinterface", "moto"}
UPPER_LAYERS = {"suite", "results", "report", "recommend", "convert", "batch", "workloads", "analysis", "datasets"}

# opens one asset of the embedded endpoint through the index (built into a cache on open), reads a dataset
# whole, and prints what was imported; argv: endpoint, bucket, key, access key, secret, cache dir
OPEN_AND_LIST = """
import json, sys
import numpy as np
from nwb_cloud.access.nwb_index import open_nwb_index
from nwb_cloud.cloud.store import Store
from nwb_cloud.refs.cache import IndexCache

endpoint, bucket, key, access, secret, cache = sys.argv[1:]
store = Store(bucket, endpoint, "us-east-1", access, secret)
with open_nwb_index(store, key, cache=IndexCache(cache), build=True) as opened:
    series = opened.nwbfile.acquisition["ElectricalSeries"]
    values = series.data[:]
print(json.dumps({"shape": list(values.shape), "sum": float(np.asarray(values, dtype="f8").sum()),
                  "modules": sorted(sys.modules)}))
"""


def _imported(python: str, store, key: str, cache: Path) -> dict:
    result = subprocess.run(
        [python, "-c", OPEN_AND_LIST, store.endpoint_url, store.bucket, key, store.access_key, store.secret_key,
         str(cache)],  # fmt: skip
        capture_output=True, text=True, timeout=600, env={**os.environ, "NWB_CLOUD_DATA_DIR": str(cache.parent)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _heavy(modules: list[str]) -> list[str]:
    tops = {name.split(".")[0] for name in modules}
    ours = {name.split(".")[1] for name in modules if name.startswith("nwb_cloud.") and name.count(".") >= 1}
    other_methods = {n for n in modules if n.startswith("nwb_cloud.access.") and n != "nwb_cloud.access.nwb_index"
                     and n.rpartition(".")[2] not in ("base",)}  # fmt: skip
    return sorted((tops & HEAVY) | {f"nwb_cloud.{layer}" for layer in ours & UPPER_LAYERS} | other_methods)


@pytest.fixture(scope="module")
def indexed_key(store, catalog):
    key = "index-install/ecephys.nwb"
    upload(store, catalog.assets["ecephys/workload-friendly"].local_path, key, progress=False)
    return key


def test_importing_and_opening_the_index_leaves_the_benchmark_and_conversion_stacks_out(store, indexed_key,
                                                                                       tmp_path):  # fmt: skip
    imported = _imported(sys.executable, store, indexed_key, tmp_path / "indexes")
    assert imported["shape"][0] > 0
    assert not _heavy(imported["modules"]), _heavy(imported["modules"])
    assert "hdmf_zarr" in imported["modules"] and "nwb_cloud.refs.nwbio" in imported["modules"]


@pytest.mark.slow
def test_a_fresh_venv_with_only_the_index_extra_opens_an_indexed_file(store, indexed_key, catalog, tmp_path):
    """``pip install .[index]`` (versions from constraints.txt) into a new venv, then an open through pynwb."""
    source = tmp_path / "source"  # a copy: pip builds in the source tree and would leave build/ in the checkout
    shutil.copytree(ROOT / "nwb_cloud", source / "nwb_cloud", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = str(environment / "bin" / "python")
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "-c", str(ROOT / "constraints.txt"), f"{source}[index]"],
        capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    listed = subprocess.run([python, "-m", "pip", "list", "--format=json"], capture_output=True, text=True)
    installed = {item["name"].lower().replace("_", "-") for item in json.loads(listed.stdout)}
    assert not installed & {"asv", "neuroconv", "lindi", "matplotlib", "remfile", "obstore", "kerchunk"}, installed
    assert {"pynwb", "hdmf-zarr", "numcodecs", "botocore", "imagecodecs"} <= installed

    imported = _imported(python, store, indexed_key, tmp_path / "indexes")
    import h5py

    with h5py.File(catalog.assets["ecephys/workload-friendly"].local_path, "r") as file:
        expected = file["acquisition/ElectricalSeries/data"][:]
    assert imported["shape"] == list(expected.shape)
    assert imported["sum"] == float(expected.astype("f8").sum())
    assert not _heavy(imported["modules"]), _heavy(imported["modules"])
