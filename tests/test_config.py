"""Configuration: the shipped example is valid, and every fault names the key and its line."""

from pathlib import Path

import pytest

from sensord.config import SCHEMA, load, mqtt_password, parse
from sensord.errors import UserError

EXAMPLE = Path(__file__).resolve().parents[1] / "configs" / "sensord.toml"


def test_example_config_is_valid_and_documents_every_key():
    cfg = load(EXAMPLE)
    text = EXAMPLE.read_text()
    for section, keys in SCHEMA.items():
        assert f"[{section}]" in text
        for key, spec in keys.items():
            assert f"\n{key} =" in text, f"[{section}] {key} is not in the example"
            if section != "receiver":  # the site is an example; the rest shows defaults
                assert cfg[section][key] == spec.default, (section, key)


def test_defaults_fill_missing_keys_and_ints_widen_to_float():
    cfg = parse("[receiver]\nlat_deg = 52\nlon_deg = 4\n")
    assert cfg["receiver"]["lat_deg"] == 52.0 and isinstance(cfg["receiver"]["lat_deg"], float)
    assert cfg["mqtt"]["port"] == 1883
    assert cfg["logging"]["level"] == "warning"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("[mqtt]\nport = 70000\n", "c.toml:5: [mqtt] port: must be between 1 and 65535"),
        ("[mqtt]\nprotocol = 4\n", "c.toml:5: [mqtt] protocol: must be one of 5, 311"),
        ("[mqtt]\nhots = 'x'\n", "c.toml:5: [mqtt] hots: unknown key"),
        ("[mqtt]\n# a comment\nqos_state = '1'\n", "c.toml:6: [mqtt] qos_state: must be int"),
        ("[source]\nrealtime = 1\n", "c.toml:5: [source] realtime: must be bool"),
        ("[source]\ngain_db = 'high'\n", "c.toml:5: [source] gain_db: must be a number"),
        ("[sauce]\nspec = 'x'\n", "c.toml:4: [sauce]: unknown section"),
    ],
)
def test_faults_name_the_key_and_its_line(tmp_path, body, expected):
    path = tmp_path / "c.toml"
    path.write_text("[receiver]\nlat_deg = 52.0\nlon_deg = 4.5\n" + body)
    with pytest.raises(UserError) as err:
        load(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.replace(str(tmp_path) + "/", "").startswith(expected), message


def test_same_key_in_another_section_does_not_confuse_the_line(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[receiver]\nlat_deg = 1.0\nlon_deg = 4.5\n[tracker]\n\n[mqtt]\nport = 0\n")
    with pytest.raises(UserError, match=r"c\.toml:7: \[mqtt\] port"):
        load(path)


def test_missing_required_key_broken_toml_and_missing_file(tmp_path):
    with pytest.raises(UserError, match=r"\[receiver\] lon_deg is required"):
        parse("[receiver]\nlat_deg = 1.0\n")
    with pytest.raises(UserError, match="not valid TOML"):
        parse("[receiver\nlat_deg = 1.0\n")
    with pytest.raises(UserError, match="configuration file not found"):
        load(tmp_path / "absent.toml")
    garbage = tmp_path / "garbage.toml"
    garbage.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(UserError, match="cannot read"):
        load(garbage)


def test_password_from_file_or_environment_never_from_the_toml(tmp_path, monkeypatch):
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    base = parse("[receiver]\nlat_deg = 1.0\nlon_deg = 2.0\n")["mqtt"]
    assert mqtt_password(base) is None
    assert mqtt_password({**base, "password_file": str(secret)}) == "s3cret"
    monkeypatch.setenv("SENSORD_TEST_PW", "from-env")
    assert mqtt_password({**base, "password_env": "SENSORD_TEST_PW"}) == "from-env"
    with pytest.raises(UserError, match=r"\$SENSORD_TEST_ABSENT is not set"):
        mqtt_password({**base, "password_env": "SENSORD_TEST_ABSENT"})
    with pytest.raises(UserError, match="password_file: cannot read"):
        mqtt_password({**base, "password_file": str(tmp_path / "absent")})
    with pytest.raises(UserError, match=r"\[mqtt\] password: unknown key"):
        parse("[receiver]\nlat_deg = 1.0\nlon_deg = 2.0\n[mqtt]\npassword = 'x'\n")
