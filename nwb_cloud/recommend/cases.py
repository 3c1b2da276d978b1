"""The closed loop's cases: data, reads and network a recommendation is made for, then measured.

Chosen before any fit and never fitted (the fit reads only the layout study's cells, and the loop's run
records this table before it fits the model, :mod:`~nwb_cloud.recommend.loop`):

* ``in-sample``: the study's own data shapes and reads, so the loop is first checked where the model was fitted;
* ``held-out``: frame sizes, channel counts and dtypes the study never wrote (256x256 float32 frames, a
  miniscope's 608x608 uint8 frames, 64 and 128 channels, float32 microvolts), mixes with weights other than
  0 and 1, and both network profiles;
* ``length``: the study's data at 5x its length (the request and index terms grow with the chunk count),
  for both seed reads, to show whether the recommendation and its gain hold as a file grows toward a session.

The sizes are real at ``full`` (the study's size: 500 frames of patch, 1 s windows, whole traces); ``tiny``
scales every axis down for the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nwb_cloud.datasets.modalities import get_modality
from nwb_cloud.datasets.signals import EcephysSpec, OphysSpec
from nwb_cloud.recommend.errors import RecommendError

IN_SAMPLE, HELD_OUT, LENGTH = "in-sample", "held-out", "length"
LOOP_PREFIX = "loop-"  # every layout the loop writes is named so; the model is never fitted to them
KINDS = (IN_SAMPLE, HELD_OUT, LENGTH)
LENGTH_FACTOR = 5


@dataclass(frozen=True)
class LoopCase:
    name: str
    modality: str
    shape: tuple[int, ...]  # at the study's size (full)
    dtype: str
    mix: dict[str, float]  # workload -> weight
    profile: str
    kind: str
    why: str
    longer_of: str | None = None  # a length case: the case it lengthens
    notes: tuple[str, ...] = field(default=())

    def shape_at(self, size: str) -> tuple[int, ...]:
        """The data's shape at ``size``: as stated at ``full`` (and ``quick``), every axis scaled down at ``tiny``."""
        if size != "tiny":
            return self.shape
        if self.modality == "ophys":
            frames, height, width = self.shape
            return (max(60, frames // 10), max(32, height // 8), max(32, width // 8))
        samples, channels = self.shape
        return (max(45_000, samples // 10), max(8, channels // 8))

    def spec(self, size: str):
        """The signal spec of the case's data at ``size`` (the generator writes it)."""
        shape = self.shape_at(size)
        dtype = None if self.dtype == _native(self.modality) else self.dtype  # None keeps the native files' keys
        if self.modality == "ophys":
            return OphysSpec(n_frames=shape[0], height=shape[1], width=shape[2], dtype=dtype)
        return EcephysSpec(n_samples=shape[0], n_channels=shape[1], dtype=dtype)

    def to_dict(self, size: str) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "modality": self.modality,
            "shape": list(self.shape_at(size)),
            "dtype": self.dtype,
            "mix": dict(self.mix),
            "profile": self.profile,
            "why": self.why,
            "longer_of": self.longer_of,
        }


def _native(modality: str) -> str:
    return {"ophys": "uint16", "ecephys": "int16"}[modality]


CASES: dict[str, LoopCase] = {
    case.name: case
    for case in (
        LoopCase("ophys-study-patch", "ophys", (1_000, 512, 512), "uint16", {"ophys_patch": 1.0}, "in-region",
                 IN_SAMPLE, "the study's two-photon movie and its seed read (in sample)"),
        LoopCase("ecephys-study-electrode", "ecephys", (600_000, 384), "int16", {"ecephys_electrode": 1.0},
                 "in-region", IN_SAMPLE, "the study's Neuropixels probe and its seed read (in sample)"),
        LoopCase("ophys-256-float32", "ophys", (1_000, 256, 256), "float32",
                 {"ophys_patch": 0.7, "ophys_clip": 0.3}, "in-region", HELD_OUT,
                 "256x256 frames stored as a motion-corrected float32 movie, read mostly as patches"),
        LoopCase("ophys-miniscope-uint8", "ophys", (1_000, 608, 608), "uint8",
                 {"ophys_patch": 0.4, "ophys_clip": 0.6}, "lab", HELD_OUT,
                 "a one-photon miniscope's 608x608 8-bit frames, read mostly as clips from a lab's network"),
        LoopCase("ecephys-64ch", "ecephys", (1_200_000, 64), "int16",
                 {"ecephys_electrode": 0.8, "ecephys_window": 0.2}, "in-region", HELD_OUT,
                 "a 64-channel headstage (40 s), read mostly one electrode at a time"),
        LoopCase("ecephys-128ch-float32", "ecephys", (300_000, 128), "float32",
                 {"ecephys_electrode": 0.3, "ecephys_window": 0.7}, "lab", HELD_OUT,
                 "128 channels of preprocessed float32 microvolts, read mostly as windows from a lab's network"),
        LoopCase("ophys-study-patch-5x", "ophys", (5 * 1_000, 512, 512), "uint16", {"ophys_patch": 1.0},
                 "in-region", LENGTH, "the study's movie at 5x its length (167 s)", longer_of="ophys-study-patch"),
        LoopCase("ecephys-study-electrode-5x", "ecephys", (5 * 600_000, 384), "int16", {"ecephys_electrode": 1.0},
                 "in-region", LENGTH, "the study's probe at 5x its length (100 s)",
                 longer_of="ecephys-study-electrode"),
    )
}  # fmt: skip


def get_cases(names=None) -> list[LoopCase]:
    """The cases named (all of them by default), in the table's order; a length case brings the case it lengthens."""
    if not names:
        return list(CASES.values())
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise RecommendError(f"unknown loop case(s) {', '.join(map(repr, unknown))}; known: {', '.join(CASES)}")
    wanted = set(names) | {CASES[n].longer_of for n in names if CASES[n].longer_of}
    return [case for name, case in CASES.items() if name in wanted]


def check_cases() -> None:
    """Every case is well formed: a modality's read workloads, weights summing to 1, a length case 5x another."""
    for case in CASES.values():
        get_modality(case.modality)
        if case.kind not in KINDS:
            raise RecommendError(f"loop case {case.name}: unknown kind {case.kind!r}")
        if abs(sum(case.mix.values()) - 1) > 1e-9:
            raise RecommendError(f"loop case {case.name}: weights sum to {sum(case.mix.values())}, not 1")
        if case.longer_of:
            base = CASES[case.longer_of]
            if case.shape != (LENGTH_FACTOR * base.shape[0], *base.shape[1:]) or case.mix != base.mix:
                raise RecommendError(f"loop case {case.name} is not {base.name} at {LENGTH_FACTOR}x its length")
