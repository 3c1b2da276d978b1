"""Deterministic, realistic signals that compress like real recordings.

Each signal is defined block by block, every block seeded by ``(seed, block index)``, so any sample has the
same value whichever buffer asks for it: files are written in streaming fashion by any chunk/buffer shape
and the source data can be regenerated exactly for any selection.

* :class:`EcephysSignal`: a Neuropixels-like int16 band (384 channels, 30 kHz) with 1/f background,
  common-mode noise, an LFP-band oscillation varying with depth, spikes with realistic waveforms on
  nearby channels, and per-channel offsets.
* :class:`OphysSignal`: a two-photon uint16 movie (512x512, 30 Hz) with a smooth background, cells as
  blobs with calcium transients, no motion, and shot noise.

A spec's ``dtype`` (None: the acquisition's native int16 / uint16) stores the same signal as other labs'
files do: floats in physical units (microvolts; photons, as after motion correction or denoising), or an
8-bit movie (a one-photon miniscope) at an 8-bit camera's gain. None keeps every cached file's key.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
from scipy import fft, ndimage, signal

# Bump when a generator changes what it produces: it is part of every cached file's content key.
GENERATOR_VERSION = 1


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


class Signal:
    """A lazily generated array: ``shape``, ``dtype``, and ``read(start, stop)`` along the first axis."""

    shape: tuple[int, ...]
    dtype: np.dtype
    block: int  # samples (frames) per independently seeded block

    def _block(self, index: int) -> np.ndarray:
        raise NotImplementedError

    @lru_cache(maxsize=4)  # noqa: B019 - the cache lives exactly as long as the signal
    def block_data(self, index: int) -> np.ndarray:
        data = self._block(index)
        data.flags.writeable = False
        return data

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``start:stop`` of the first axis, all of the other axes."""
        start, stop = max(0, start), min(stop, self.shape[0])
        out = np.empty((max(0, stop - start), *self.shape[1:]), dtype=self.dtype)
        position = start
        while position < stop:
            index, offset = divmod(position, self.block)
            take = min(self.block - offset, stop - position)
            out[position - start : position - start + take] = self.block_data(index)[offset : offset + take]
            position += take
        return out

    def __getitem__(self, selection) -> np.ndarray:
        selection = selection if isinstance(selection, tuple) else (selection,)
        first = selection[0]
        if isinstance(first, slice):
            start, stop, step = first.indices(self.shape[0])
            return self.read(start, stop)[(slice(None, None, step), *selection[1:])]
        index = int(first) % self.shape[0]
        return self.read(index, index + 1)[(0, *selection[1:])]


@dataclass(frozen=True)
class EcephysSpec:
    n_samples: int
    n_channels: int = 384
    rate: float = 30_000.0
    dtype: str | None = None  # None: int16 ADC counts


@dataclass(frozen=True)
class OphysSpec:
    n_frames: int
    height: int = 512
    width: int = 512
    rate: float = 30.0
    dtype: str | None = None  # None: uint16 camera counts


def _stored(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``values`` (float32) as ``dtype``: floats as they are, integers rounded and clipped to the type's range."""
    if dtype.kind == "f":
        return values.astype(dtype)
    limits = np.iinfo(dtype)
    return np.clip(np.rint(values), limits.min, limits.max).astype(dtype)


class EcephysSignal(Signal):
    """Raw extracellular voltage in ADC counts (0.195 uV/bit, the Neuropixels 1.0 AP-band gain)."""

    conversion = 0.195e-6  # volts per count
    white_noise_counts = 28.0
    pink_noise_counts = 22.0
    common_mode_counts = 9.0

    def __init__(self, spec: EcephysSpec, seed: int = 0):
        self.spec = spec
        self.seed = seed
        self.shape = (spec.n_samples, spec.n_channels)
        self.dtype = np.dtype(getattr(spec, "dtype", None) or "int16")
        self.scale = 1.0  # stored units per ADC count
        if self.dtype.kind == "f":  # microvolts
            self.scale, self.conversion = self.conversion / 1e-6, 1e-6
        self.block = int(spec.rate)  # one second
        rng = _rng(seed, 0)
        n_channels = spec.n_channels
        self.offsets = rng.normal(0, 60, n_channels).round()
        depth = np.arange(n_channels)
        self.lfp_amplitude = 350 * (0.6 + 0.4 * np.sin(depth / max(n_channels, 2) * np.pi * 1.5))
        self.lfp_phase = depth * 0.012
        n_units = max(4, n_channels // 4)
        self.unit_channel = rng.integers(0, n_channels, n_units)
        self.unit_rate = np.exp(rng.normal(np.log(4.0), 0.8, n_units)).clip(0.2, 40)
        self.unit_amplitude = rng.uniform(90, 650, n_units)
        self.templates = self._templates(rng)

    def _templates(self, rng: np.random.Generator) -> np.ndarray:
        """(units, 60 samples, 17 channels) waveforms: a sharp trough and a slower rebound, decaying in space."""
        fs = self.spec.rate
        t = np.arange(60) / fs * 1e3  # ms
        trough = rng.uniform(0.45, 0.6, (len(self.unit_channel), 1))
        width = rng.uniform(0.1, 0.2, (len(self.unit_channel), 1))
        waveform = -np.exp(-((t - trough) ** 2) / (2 * width**2)) + 0.35 * np.exp(
            -((t - trough - 0.55) ** 2) / (2 * (width * 3) ** 2)
        )
        distance = np.abs(np.arange(-8, 9))
        spread = rng.uniform(1.2, 2.5, (len(self.unit_channel), 1))
        spatial = np.exp(-distance[None, :] / spread)
        return (self.unit_amplitude[:, None, None] * waveform[:, :, None] * spatial[:, None, :]).astype(np.float32)

    def _pink(self, rng: np.random.Generator, n: int, m: int) -> np.ndarray:
        white = rng.standard_normal((n, m), dtype=np.float32)
        spectrum = fft.rfft(white, axis=0, workers=-1)
        freqs = fft.rfftfreq(n, 1 / self.spec.rate)
        spectrum *= (1.0 / np.sqrt(np.maximum(freqs, 1.0))).astype(np.float32)[:, None]
        pink = fft.irfft(spectrum, n=n, axis=0, workers=-1)
        return pink / max(float(pink.std()), 1e-9)

    def _block(self, index: int) -> np.ndarray:
        fs, n_channels = self.spec.rate, self.spec.n_channels
        start = index * self.block
        n = min(self.block, self.spec.n_samples - start)
        rng = _rng(self.seed, 1, index)
        data = self.white_noise_counts * rng.standard_normal((n, n_channels), dtype=np.float32)
        data += self.pink_noise_counts * ndimage.uniform_filter1d(self._pink(rng, n, n_channels), 3, axis=1)
        data += self.common_mode_counts * self._pink(rng, n, 1)
        t = (start + np.arange(n)) / fs
        envelope = 1 + 0.3 * np.sin(2 * np.pi * 0.13 * t)
        data += _travelling_wave(t, 7.0, self.lfp_phase, envelope, self.lfp_amplitude)
        data += _travelling_wave(t, 41.0, 3 * self.lfp_phase, np.ones_like(t), 0.08 * self.lfp_amplitude)
        self._add_spikes(rng, data)
        data += self.offsets[None, :].astype(np.float32)
        if self.dtype.kind == "f":
            return (np.rint(data) * np.float32(self.scale)).astype(self.dtype)
        return _stored(data, self.dtype)

    def _add_spikes(self, rng: np.random.Generator, data: np.ndarray) -> None:
        n, n_channels = data.shape
        width = self.templates.shape[1]
        if n <= width:
            return
        counts = rng.poisson(self.unit_rate * n / self.spec.rate)
        for unit in np.flatnonzero(counts):
            times = rng.integers(0, n - width, counts[unit])
            channels = self.unit_channel[unit] + np.arange(-8, 9)
            inside = (channels >= 0) & (channels < n_channels)
            template = self.templates[unit][:, inside]
            rows = (times[:, None] + np.arange(width)[None, :]).reshape(-1)
            block = np.tile(template, (len(times), 1))
            np.add.at(data, (rows[:, None], channels[inside][None, :]), block)


def _travelling_wave(t, frequency, phase, envelope, amplitude) -> np.ndarray:
    """``envelope(t) * amplitude(ch) * sin(2 pi f t + phase(ch))`` as two outer products (no per-sample sin)."""
    a = 2 * np.pi * frequency * t
    sin_t, cos_t = (envelope * np.sin(a)).astype(np.float32), (envelope * np.cos(a)).astype(np.float32)
    sin_c = (amplitude * np.cos(phase)).astype(np.float32)
    cos_c = (amplitude * np.sin(phase)).astype(np.float32)
    return np.outer(sin_t, sin_c) + np.outer(cos_t, cos_c)


class OphysSignal(Signal):
    """Two-photon fluorescence in camera counts: photons x gain + offset, Poisson photon noise."""

    gain = 6.0
    offset = 90.0

    def __init__(self, spec: OphysSpec, seed: int = 0):
        self.spec = spec
        self.seed = seed
        self.shape = (spec.n_frames, spec.height, spec.width)
        self.dtype = np.dtype(spec.dtype or "uint16")
        if self.dtype.itemsize == 1:  # an 8-bit camera: fewer counts per photon, a lower offset
            self.gain, self.offset = 1.5, 20.0
        self.block = 16
        rng = _rng(seed, 0)
        self.background = self._background(rng)
        self.cells = self._cells(rng)

    def _background(self, rng: np.random.Generator) -> np.ndarray:
        h, w = self.spec.height, self.spec.width
        y, x = np.mgrid[0:h, 0:w]
        vignette = 1 - 0.35 * (((y - h / 2) / h) ** 2 + ((x - w / 2) / w) ** 2) * 4
        texture = ndimage.gaussian_filter(rng.standard_normal((h, w)), sigma=max(h, w) / 24)
        texture /= max(float(np.abs(texture).max()), 1e-9)
        return (14 * vignette * (1 + 0.25 * texture)).clip(2).astype(np.float32)

    def _cells(self, rng: np.random.Generator) -> list[tuple[slice, slice, np.ndarray]]:
        h, w = self.spec.height, self.spec.width
        n_cells = max(3, h * w // 1500)
        cells = []
        for _ in range(n_cells):
            ry, rx = rng.uniform(3.5, 6.5, 2)
            angle = rng.uniform(0, np.pi)
            half = int(np.ceil(3 * max(ry, rx)))
            cy, cx = rng.integers(0, h), rng.integers(0, w)
            yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
            u = np.cos(angle) * xx + np.sin(angle) * yy
            v = -np.sin(angle) * xx + np.cos(angle) * yy
            footprint = np.exp(-0.5 * ((u / rx) ** 2 + (v / ry) ** 2)) * rng.uniform(8, 20)
            y0, x0 = cy - half, cx - half
            ys = slice(max(0, y0), min(h, y0 + 2 * half + 1))
            xs = slice(max(0, x0), min(w, x0 + 2 * half + 1))
            footprint = footprint[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
            cells.append((ys, xs, footprint.astype(np.float32)))
        return cells

    @cached_property
    def traces(self) -> np.ndarray:
        """(frames, cells) dF/F + 1: Poisson calcium events with ~1 s (GCaMP6s-like) exponential decay."""
        rng = _rng(self.seed, 2)
        n, fs = self.spec.n_frames, self.spec.rate
        rates = rng.uniform(0.05, 0.4, len(self.cells))
        events = rng.poisson(rates[None, :] / fs, (n, len(self.cells))).astype(np.float32)
        events *= rng.lognormal(0.0, 0.5, events.shape).astype(np.float32)
        decay = np.exp(-1.0 / (1.0 * fs))
        calcium = signal.lfilter([1.0], [1.0, -decay], events, axis=0)
        return (1.0 + 1.5 * calcium).astype(np.float32)

    def _block(self, index: int) -> np.ndarray:
        start = index * self.block
        n = min(self.block, self.spec.n_frames - start)
        photons = np.repeat(self.background[None], n, axis=0)
        traces = self.traces[start : start + n]
        for c, (ys, xs, footprint) in enumerate(self.cells):
            photons[:, ys, xs] += traces[:, c, None, None] * footprint[None]
        rng = _rng(self.seed, 1, index)
        counts = self.gain * rng.poisson(photons).astype(np.float32) + self.offset
        counts += rng.normal(0, 2.0, counts.shape).astype(np.float32)  # read noise
        if self.dtype.kind == "f":  # photons, as a motion-corrected or denoised movie stores them
            return ((counts - self.offset) / self.gain).astype(self.dtype)
        return _stored(counts, self.dtype)
