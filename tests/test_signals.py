"""The generators are deterministic, block-independent, and look (and compress) like real recordings."""

import zlib

import numpy as np
import pytest
from scipy import signal

from nwb_cloud.datasets.signals import EcephysSignal, EcephysSpec, OphysSignal, OphysSpec

ECEPHYS = EcephysSpec(n_samples=75_000, n_channels=48)
OPHYS = OphysSpec(n_frames=450, height=96, width=96)  # 15 s: several transients per cell


@pytest.mark.parametrize("make", [lambda s: EcephysSignal(ECEPHYS, s), lambda s: OphysSignal(OPHYS, s)])
def test_same_seed_same_data_other_seed_other_data(make):
    a, b, c = make(3), make(3), make(4)
    n = a.shape[0]
    assert np.array_equal(a.read(0, n), b.read(0, n))
    assert not np.array_equal(a.read(0, n), c.read(0, n))


@pytest.mark.parametrize("make", [lambda: EcephysSignal(ECEPHYS, 1), lambda: OphysSignal(OPHYS, 1)])
def test_any_buffer_sees_the_same_values(make):
    """Values do not depend on which buffer asks for them: files can be written with any chunking."""
    whole = make().read(0, make().shape[0])
    fresh = make()
    for start, stop in [(5, 17), (29_990, 30_010), (0, 1), (whole.shape[0] - 3, whole.shape[0] + 5)]:
        stop_clipped = min(stop, whole.shape[0])
        assert np.array_equal(fresh.read(start, stop), whole[start:stop_clipped])
    assert np.array_equal(fresh[7:30:3], whole[7:30:3])


def test_ecephys_looks_like_a_neuropixels_band():
    source = EcephysSignal(ECEPHYS, 0)
    data = source.read(0, ECEPHYS.n_samples).astype(np.float64)
    assert data.dtype == np.float64 and source.dtype == np.int16
    centred = data - np.median(data, axis=0)
    # spikes: large negative excursions, more common than Gaussian noise alone would give
    sos = signal.butter(4, [300, 6000], btype="bandpass", fs=ECEPHYS.rate, output="sos")
    spikes_band = signal.sosfiltfilt(sos, centred, axis=0)
    noise = np.median(np.abs(spikes_band), axis=0) / 0.6745
    crossings = (spikes_band < -5 * noise).sum()
    assert crossings > 50
    # an LFP oscillation near 7 Hz dominates the low band
    freqs, power = signal.welch(centred[:, 10], fs=ECEPHYS.rate, nperseg=30_000)
    low = (freqs > 1) & (freqs < 100)
    assert abs(freqs[low][np.argmax(power[low])] - 7.0) <= 1.0
    # neighbouring channels are correlated (common mode + spatial smoothing), far ones less
    hp = spikes_band
    near = np.corrcoef(hp[:, 20], hp[:, 21])[0, 1]
    assert near > 0.1
    # per-channel offsets
    assert np.std(np.median(data, axis=0)) > 20


def test_ophys_has_cells_brighter_than_background_and_transients():
    source = OphysSignal(OPHYS, 0)
    movie = source.read(0, OPHYS.n_frames).astype(np.float64)
    mean = movie.mean(axis=0)
    ys, xs, _ = source.cells[0]
    cell = mean[ys, xs].max()
    assert cell > np.percentile(mean, 50) * 1.2
    # shot noise: temporal variance grows with brightness (Poisson)
    var = movie.var(axis=0)
    bright, dim = mean > np.percentile(mean, 90), mean < np.percentile(mean, 10)
    assert var[bright].mean() > var[dim].mean()
    assert source.traces.max() > 1.5  # calcium transients above baseline


@pytest.mark.parametrize(
    "data, low, high",
    [
        (lambda: EcephysSignal(ECEPHYS, 0).read(0, 60_000), 1.15, 2.5),
        (lambda: OphysSignal(OPHYS, 0).read(0, 40), 1.3, 3.5),
    ],
)
def test_compresses_like_real_data(data, low, high):
    """Real Neuropixels raw gzips ~1.3-1.6x and raw two-photon ~1.5-3x: neither noise nor constant."""
    raw = np.ascontiguousarray(data()).tobytes()
    ratio = len(raw) / len(zlib.compress(raw, 4))
    assert low < ratio < high
