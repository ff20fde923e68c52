"""The command line: bad numbers are one line, every command has the same defaults, files are
read at their own rate, long simulations report progress, logs suit a terminal and journald."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import MODES1

from sensord import cli
from sensord.commands import simulate
from sensord.commands.track import chain_settings
from sensord.config import Config, ReceiverConfig

SITE_TOML = "[receiver]\nlat_deg = 37.0\nlon_deg = 13.8\n"
BAD_RATES = ("0", "-1", "abc", "1e9", "nan", "inf")


def _main(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("rate", BAD_RATES)
@pytest.mark.parametrize(
    "argv",
    [
        ["decode", str(MODES1)],
        ["track", str(MODES1), "--lat", "37", "--lon", "13"],
        ["replay", str(MODES1), "--lat", "37", "--lon", "13"],
        ["run", "-c", "unused.toml"],
        ["simulate", "-o", "unused"],
    ],
    ids=lambda a: a[0],
)
def test_every_bad_rate_is_one_line_in_every_command(argv, rate, capsys):
    code, err = _main([*argv, f"--rate={rate}"], capsys)
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "--rate" in lines[0], err
    assert lines[0].startswith(f"sensord {argv[0]}: error:")


def test_bad_rate_through_the_console_is_one_line_too():
    proc = subprocess.run(
        [sys.executable, "-m", "sensord", "decode", str(MODES1), "--rate", "nan"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "sample rate must be a positive number" in proc.stderr


def test_max_range_and_tracker_defaults_are_the_same_in_every_command():
    from sensord.daemon.pipeline import Pipeline  # run's chain
    from sensord.tracker.tracker import TrackerConfig

    expected_m = ReceiverConfig.max_range_km * 1e3
    for command in ("track", "replay"):
        args = cli.build_parser([command]).parse_args(
            [command, "x.cu8", "--lat", "1", "--lon", "2"]
        )
        settings = chain_settings(args)
        assert settings.max_range_m == expected_m == 400e3, command
        assert settings.tracker == TrackerConfig() == Config().tracker
        assert settings.fix_bits == Config().demod.fix_bits
    import inspect

    pipeline_default = inspect.signature(Pipeline).parameters["max_range_m"].default
    assert pipeline_default == expected_m


def test_track_takes_tracker_parameters_from_a_config_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        SITE_TOML + "[tracker]\nconfirm_m = 2\ngate_chi2 = 20.0\n[demod]\nfix_bits = 0\n"
    )
    args = cli.build_parser(["track"]).parse_args(["track", "x.cu8", "-c", str(path)])
    settings = chain_settings(args)
    assert (settings.tracker.confirm_m, settings.tracker.gate_chi2, settings.fix_bits) == (
        2,
        20.0,
        0,
    )
    assert (settings.site.lat_deg, settings.site.lon_deg) == (37.0, 13.8)
    args = cli.build_parser(["track"]).parse_args(
        ["track", "x.cu8", "-c", str(path), "--lat", "95", "--lon", "2"]
    )
    with pytest.raises(Exception, match=r"^--lat: must be between -90 and 90"):
        chain_settings(args)


def _run_file(tmp_path: Path, data: Path, *extra: str) -> subprocess.CompletedProcess:
    cfg = tmp_path / "run.toml"
    cfg.write_text(SITE_TOML + f'[source]\nspec = "{data}"\nrate_hz = 2400000.0\n'
                   "[mqtt]\nenabled = false\n")  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "sensord", "run", "-c", str(cfg), *extra],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _frames_of(stderr: str) -> int:
    (line,) = [x for x in stderr.splitlines() if "stopped:" in x]
    return int(line.split("samples, ")[1].split(" frames")[0])


def test_run_reads_a_file_at_the_rate_of_its_name_not_the_configs(tmp_path):
    proc = _run_file(tmp_path, MODES1)
    assert proc.returncode == 0, proc.stderr
    assert "at 2 MS/s" in proc.stderr  # INFO is shown by default: what was read, how fast
    assert _frames_of(proc.stderr) > 300  # at 2.4 MS/s the same samples give almost none


def test_run_reads_a_sigmf_file_at_its_metadata_rate_and_rate_flag_overrides(tmp_path):
    data = tmp_path / "capture.sigmf-data"
    data.write_bytes(MODES1.read_bytes())
    meta = {"global": {"core:datatype": "cu8", "core:sample_rate": 2e6, "core:version": "1.0.0"},
            "captures": [{"core:sample_start": 0}], "annotations": []}  # fmt: skip
    (tmp_path / "capture.sigmf-meta").write_text(json.dumps(meta))
    proc = _run_file(tmp_path, tmp_path / "capture.sigmf-meta")
    assert proc.returncode == 0, proc.stderr
    assert _frames_of(proc.stderr) > 300 and "overrides" not in proc.stderr
    forced = _run_file(tmp_path, tmp_path / "capture.sigmf-meta", "--rate", "2.4e6")
    assert "--rate 2400000 overrides core:sample_rate 2000000" in forced.stderr
    assert _frames_of(forced.stderr) < 50


def test_simulate_names_the_rate_so_decode_reads_it_right(tmp_path, capsys):
    stem = tmp_path / "rec"
    code, err = _main(["simulate", "-o", str(stem), "--rate", "2e6", "--duration", "2",
                       "--aircraft", "3"], capsys)  # fmt: skip
    assert code == 0, err
    data = tmp_path / "rec_2000k.cu8"
    assert data.exists() and (tmp_path / "rec_2000k.scenario.json").exists()
    assert not (tmp_path / "rec.cu8").exists()
    proc = subprocess.run(
        [sys.executable, "-m", "sensord", "decode", str(data)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "at 2 MS/s" in proc.stderr and len(proc.stdout.splitlines()) > 20
    code, err = _main(["simulate", "-o", str(tmp_path / "x_2400k"), "--rate", "2e6"], capsys)
    assert code == 2 and "the name says 2.4 MS/s but --rate is 2 MS/s" in err


def test_simulate_reports_progress_on_stderr(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(simulate, "PROGRESS_EVERY_S", 0.0)
    code, err = _main(["simulate", "-o", str(tmp_path / "p"), "--duration", "4",
                       "--aircraft", "2"], capsys)  # fmt: skip
    assert code == 0, err
    progress = [x for x in err.splitlines() if x.startswith("simulate:")]
    assert len(progress) >= 3 and "of 4 s written" in progress[0], err


def test_help_imports_no_command_and_no_numpy():
    code = (
        "import sys, contextlib, io\n"
        "from sensord.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try: main(['--help'])\n"
        "    except SystemExit: pass\n"
        "assert 'decode' in out.getvalue() and 'simulate' in out.getvalue()\n"
        "print(sorted(m for m in sys.modules if m.startswith(('sensord.commands', 'numpy'))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_info_is_shown_with_timestamps_on_a_terminal_and_without_under_journald(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text(SITE_TOML + f'[source]\nspec = "{MODES1}"\n[mqtt]\nenabled = false\n')
    cmd = [sys.executable, "-m", "sensord", "run", "-c", str(cfg)]
    plain = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    (stopped,) = [x for x in plain.stderr.splitlines() if "stopped:" in x]
    assert stopped[:4].isdigit() and " INFO sensord.run: stopped:" in stopped
    read_fd, write_fd = os.pipe()
    st = os.fstat(write_fd)
    env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
    with os.fdopen(read_fd) as reader:
        proc = subprocess.Popen(cmd, stderr=write_fd, stdout=subprocess.DEVNULL, env=env)
        os.close(write_fd)
        journal = reader.read()
    assert proc.wait(timeout=120) == 0
    (stopped,) = [x for x in journal.splitlines() if "stopped:" in x]
    assert stopped.startswith("INFO sensord.run: stopped:"), journal


def test_the_declared_python_floor_is_the_one_checked_and_tested():
    import tomllib

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    floor = project["project"]["requires-python"]
    assert floor == ">=3.11"  # asyncio.timeout and TimeoutError as the publisher uses them
    assert project["tool"]["ruff"]["target-version"] == "py311"
    assert project["tool"]["mypy"]["python_version"] == "3.11"
    assert sys.version_info >= (3, 11)
    if os.environ.get("CI"):  # CI runs on Debian bookworm's Python: the floor itself
        assert sys.version_info[:2] == (3, 11), sys.version


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_a_bad_metrics_port_is_one_line(port, capsys):
    code, err = _main(["replay", str(MODES1), "--lat", "37", "--lon", "13",
                       "--metrics-port", port], capsys)  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "expected a TCP port" in err, err
