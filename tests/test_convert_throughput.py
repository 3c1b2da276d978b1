"""Conversion throughput per interface (what the asv benchmark reports): measured on a verified conversion."""

import pytest

from nwb_cloud.convert import sources
from nwb_cloud.convert.errors import CheckFailed
from nwb_cloud.convert.throughput import INTERFACES, measure


@pytest.mark.parametrize("interface", INTERFACES)
def test_measure_converts_verifies_and_reports_mb_per_s(interface, tmp_path):
    measured = measure(interface, "tiny", data_dir=tmp_path)
    raw = sources.write_session(tmp_path / "raw-sources", f"{interface}-tiny-s0", interface)  # cached: same files
    assert measured.bytes == raw.nbytes and measured.seconds > 0 and measured.cores >= 1
    assert measured.mb_per_s == pytest.approx(raw.nbytes / 1e6 / measured.seconds)
    record = measured.record()
    assert (record.step, record.interface, record.bytes) == ("convert", interface, raw.nbytes)


def test_a_wrong_conversion_is_an_error_not_a_speed(tmp_path, monkeypatch):
    real = sources.RawSession.expected
    monkeypatch.setattr(sources.RawSession, "expected", lambda self: real(self) + 1)
    with pytest.raises(CheckFailed, match="differs from the generated source"):
        measure("TiffImagingInterface", "tiny", data_dir=tmp_path)
