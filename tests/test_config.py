"""Configuration: the shipped example is valid, and every fault names the key and its line."""

import dataclasses
import logging
import shutil
from pathlib import Path

import pytest

from sensord.config import Config, defaults, load, mqtt_password, parse, sections
from sensord.errors import UserError
from sensord.tracker.tracker import TrackerConfig

EXAMPLE = Path(__file__).resolve().parents[1] / "configs" / "sensord.toml"


def test_example_config_is_valid_and_documents_every_key():
    cfg = load(EXAMPLE)
    text = EXAMPLE.read_text()
    for section, keys in defaults().items():
        assert f"[{section}]" in text
        for key, default in keys.items():
            assert f"\n{key} =" in text, f"[{section}] {key} is not in the example"
            if section != "receiver":  # the site is an example; the rest shows defaults
                assert getattr(cfg[section], key) == default, (section, key)


def test_defaults_fill_missing_keys_and_ints_widen_to_float():
    cfg = parse("[receiver]\nlat_deg = 52\nlon_deg = 4\n")
    assert cfg["receiver"]["lat_deg"] == 52.0 and isinstance(cfg["receiver"]["lat_deg"], float)
    assert cfg["mqtt"]["port"] == 1883
    assert cfg["logging"]["level"] == "info"  # normal events are shown by default


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


# ---- one typed configuration ------------------------------------------------------------
SITE_TOML = "[receiver]\nlat_deg = 52.0\nlon_deg = 4.5\n"


def test_every_tracker_parameter_is_settable_from_the_toml():
    names = [f.name for f in dataclasses.fields(TrackerConfig)]
    assert len(names) >= 17
    changed = {}
    for f in dataclasses.fields(TrackerConfig):
        if f.type in (bool, "bool"):
            changed[f.name] = not f.default
        elif f.type in (str, "str"):
            continue  # a choice: checked below
        elif f.name in ("confirm_m", "confirm_n"):
            continue
        else:
            changed[f.name] = f.default * 1.5 + 1 if f.type in (float, "float") else f.default + 1
    body = "".join(f"{k} = {str(v).lower()}\n" for k, v in changed.items())
    body += 'nonlinear_filter = "ukf"\n'
    cfg = parse(SITE_TOML + "[tracker]\nconfirm_m = 2\nconfirm_n = 4\n" + body)
    assert isinstance(cfg.tracker, TrackerConfig)
    for key, value in changed.items():
        assert getattr(cfg.tracker, key) == pytest.approx(value), key
    assert (cfg.tracker.confirm_m, cfg.tracker.confirm_n) == (2, 4)
    assert cfg.tracker.nonlinear_filter == "ukf"
    with pytest.raises(UserError, match=r"\[tracker\] nonlinear_filter: must be one of auto"):
        parse(SITE_TOML + "[tracker]\nnonlinear_filter = 'kalman'\n")


def test_sections_are_typed_dataclasses_with_the_tracker_defaults():
    cfg = parse(SITE_TOML)
    assert list(sections()) == [
        "receiver", "source", "demod", "tracker", "mqtt", "outputs", "logging", "fusion", "web"
    ]  # fmt: skip
    assert cfg.tracker == TrackerConfig()
    assert cfg.receiver.max_range_km == 400.0 and cfg.mqtt.port == 1883
    assert Config().receiver.max_range_km == cfg.receiver.max_range_km


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("[tracker]\nconfirm_m = 6\n", "c.toml:5: [tracker] confirm_m: confirm_m = 6 > confirm_n"),
        ("[tracker]\ncoast_after_s = 90.0\n", "c.toml:5: [tracker] coast_after_s: must not exceed"),
        ("[tracker]\ngate_chi2 = 0.1\n", "c.toml:5: [tracker] gate_chi2: must be between 1 and"),
        ("[tracker]\nmax_speed_mps = nan\n", "c.toml:5: [tracker] max_speed_mps: must be a finite"),
        ("[tracker]\nimm = 'yes'\n", "c.toml:5: [tracker] imm: must be bool"),
        ("[tracker]\nimm_x = 1\n", "c.toml:5: [tracker] imm_x: unknown key"),
        ("[source]\nrate_hz = inf\n", "c.toml:5: [source] rate_hz: must be a finite number"),
        ("[source]\nrate_hz = 1e9\n", "c.toml:5: [source] rate_hz: must be between 2e+06 and"),
        ("[mqtt]\nca_file = '/x.pem'\n", "c.toml:5: [mqtt] ca_file: is set but tls = false"),
        ("[mqtt]\npassword_env = 'P'\n", "c.toml:4: [mqtt] username: a password is configured"),
        ("[mqtt]\nusername = 'u'\npassword_env = 'P'\npassword_file = '/p'\n",
         "c.toml:6: [mqtt] password_env: give password_file or password_env, not both"),
        ("[mqtt]\ntls = true\nca_file = '/nonexistent/ca.pem'\n",
         "c.toml:6: [mqtt] ca_file: /nonexistent/ca.pem: no such file"),
    ],
)  # fmt: skip
def test_contradictions_and_permanent_faults_are_refused_at_start(tmp_path, body, expected):
    path = tmp_path / "c.toml"
    path.write_text(SITE_TOML + body)
    with pytest.raises(UserError) as err:
        load(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.replace(str(tmp_path) + "/", "").startswith(expected), message


def test_a_missing_ca_file_stops_the_daemon_at_start(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "c.toml"
    path.write_text(SITE_TOML + "[mqtt]\ntls = true\nca_file = '/nonexistent/ca.pem'\n")
    proc = subprocess.run(
        [sys.executable, "-m", "sensord", "run", "-c", str(path), "--source", "x.cu8"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"sensord run: error: {path}:6: [mqtt] ca_file: /nonexistent/ca.pem: no such file"
    ]


@pytest.fixture
def pki(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl")
    from test_publish_tls import make_pki

    make_pki(tmp_path)
    return tmp_path


def test_tls_files_are_loaded_at_start_and_faults_name_the_file(tmp_path, pki):
    good = f"[mqtt]\ntls = true\nca_file = '{pki}/ca.pem'\ncert_file = '{pki}/client.pem'\n"
    cfg = parse(SITE_TOML + good + f"key_file = '{pki}/client.key'\n")
    assert cfg.mqtt.tls and cfg.mqtt.ca_file.endswith("ca.pem")
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    with pytest.raises(UserError, match=r"\[mqtt\] ca_file: .*junk\.pem: not a PEM CA certificate"):
        parse(SITE_TOML + f"[mqtt]\ntls = true\nca_file = '{tmp_path}/junk.pem'\n")
    wrong_key = good + f"key_file = '{pki}/server.key'\n"
    with pytest.raises(UserError) as err:
        parse(SITE_TOML + wrong_key)
    assert "client.pem and " in str(err.value) and "server.key" in str(err.value)
    assert "key belongs to the certificate" in str(err.value)


def test_world_readable_password_file_is_warned_about(tmp_path, caplog):
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    body = f"[mqtt]\nusername = 'u'\npassword_file = '{secret}'\n"
    secret.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="sensord.config"):
        parse(SITE_TOML + body)
    assert not caplog.records
    secret.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="sensord.config"):
        parse(SITE_TOML + body)
    (record,) = caplog.records
    assert "readable by every user" in record.getMessage() and "chmod 600" in record.getMessage()


def test_command_line_overrides_are_checked_like_the_toml():
    cfg = parse(SITE_TOML)
    cfg.override("source", "rate_hz", 2.0e6, "--rate")
    assert cfg.source.rate_hz == 2.0e6
    with pytest.raises(UserError, match=r"^--rate: must be between"):
        cfg.override("source", "rate_hz", 9e6, "--rate")
    with pytest.raises(UserError, match=r"^--lat: must be between -90 and 90"):
        cfg.override("receiver", "lat_deg", 95.0, "--lat")
    assert cfg.source.rate_hz == 2.0e6 and cfg.receiver.lat_deg == 52.0


def test_broker_hints_say_what_to_check():
    from sensord.config import broker_error_hint

    mqtt = parse(SITE_TOML + "[mqtt]\nusername = 'sensor'\npassword_env = 'PW'\n").mqtt
    hint = broker_error_hint("[code:134] Bad user name or password", mqtt)
    assert "username (sensor)" in hint and "password_env $PW" in hint
    hint = broker_error_hint("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed", mqtt)
    assert "ca_file" in hint and "host (127.0.0.1)" in hint
    assert broker_error_hint("timed out", mqtt) == ""


def test_fusion_section_lists_and_a_config_without_a_receiver():
    cfg = parse("[fusion]\nnodes = ['north', 'south']\nshards = [0, 3]\n", required=frozenset())
    assert cfg.fusion.nodes == ["north", "south"] and cfg.fusion.shards == [0, 3]
    assert Config().fusion.nodes == [] and Config().fusion.nodes is not Config().fusion.nodes
    for body, expected in [
        ("nodes = ['a/b']", "[fusion] nodes: must be node names"),
        ("nodes = 'north'", "[fusion] nodes: must be a list of str"),
        ("shards = [1, true]", "[fusion] shards: must be a list of int"),
        ("site = '95,4,0'", "[fusion] site: must be 'LAT,LON,ALT_M' with the latitude"),
        ("max_clock_offset_s = 0.0", "f.toml:2: [fusion] max_clock_offset_s: must be between"),
        ("max_clock_offset_s = 'ten'", "f.toml:2: [fusion] max_clock_offset_s: must be float"),
    ]:
        with pytest.raises(UserError) as err:
            parse(f"[fusion]\n{body}\n", Path("f.toml"), required=frozenset())
        assert expected in str(err.value), err.value
    assert parse("[fusion]\nmax_clock_offset_s = 5\n", required=frozenset()).fusion[
        "max_clock_offset_s"
    ] == pytest.approx(5.0)
    with pytest.raises(UserError, match=r"\[receiver\] lat_deg is required"):
        parse("[fusion]\n")
