"""SigMF metadata: what write_meta puts in the file and what read_meta takes from it."""

import json

import pytest

from sensord.errors import SourceError
from sensord.source import sigmf


@pytest.mark.parametrize(
    ("given", "datatype", "fmt"),
    [
        ("cu8", "cu8", "cu8"),
        ("cs8", "ci8", "cs8"),
        ("ci16_le", "ci16_le", "cs16"),
        ("cf32", "cf32_le", "cf32"),
    ],
)
def test_write_then_read_maps_datatypes(tmp_path, given, datatype, fmt):
    data = tmp_path / "rec.sigmf-data"
    data.write_bytes(b"\0" * 16)
    meta_path = sigmf.write_meta(data, given, 2.4e6, center_hz=1089.9e6)
    assert meta_path == tmp_path / "rec.sigmf-meta"
    doc = json.loads(meta_path.read_text())
    assert doc["global"]["core:datatype"] == datatype
    assert doc["global"]["core:sample_rate"] == 2.4e6
    assert doc["global"]["core:version"].startswith("1.")
    assert doc["captures"] == [{"core:sample_start": 0, "core:frequency": 1089.9e6}]
    meta = sigmf.read_meta(data)
    assert (meta.fmt, meta.rate_hz, meta.center_hz, meta.data_path) == (fmt, 2.4e6, 1089.9e6, data)


def test_description_extra_global_and_annotations_are_kept(tmp_path):
    data = tmp_path / "sim.sigmf-data"
    notes = [{"core:sample_start": 100, "core:sample_count": 240, "core:comment": "DF17"}]
    sigmf.write_meta(
        data,
        "cu8",
        2.0e6,
        description="simulated",
        extra_global={"sensord:seed": 7},
        annotations=notes,
    )
    doc = json.loads((tmp_path / "sim.sigmf-meta").read_text())
    assert doc["global"]["core:description"] == "simulated"
    assert doc["global"]["sensord:seed"] == 7
    assert doc["annotations"] == notes


def test_write_refuses_an_unknown_datatype(tmp_path):
    with pytest.raises(ValueError, match="unsupported SigMF datatype"):
        sigmf.write_meta(tmp_path / "x.sigmf-data", "ri16_le", 2e6)
    assert not (tmp_path / "x.sigmf-meta").exists()


def test_read_without_meta_file_is_a_clear_error(tmp_path):
    (tmp_path / "lonely.sigmf-data").write_bytes(b"\0" * 8)
    with pytest.raises(SourceError, match="metadata file not found"):
        sigmf.read_meta(tmp_path / "lonely.sigmf-data")


def test_read_meta_that_is_not_utf8(tmp_path):
    (tmp_path / "bad.sigmf-meta").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(SourceError, match="cannot read"):
        sigmf.read_meta(tmp_path / "bad.sigmf-meta")
