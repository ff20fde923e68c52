"""Start-up cost and footprint of the ``sensord`` command (issue 11, item 4).

Prints:
- CPU (user + system, of the child process) and peak RSS of ``sensord --help``,
  ``sensord decode --help`` and ``sensord decode`` of a tiny file, median of N runs;
- ``python -X importtime`` of what ``decode`` and ``run`` import, summarised by top-level
  package (self time summed), so a heavy import shows at once;
- steady RSS of ``sensord run`` (no IMM) replaying a simulated recording at real-time pace
  into a mosquitto on a loopback port (MQTT off if no mosquitto is installed).

Usage: python benchmarks/bench_startup.py [--runs 7] [--run-seconds 12]
Run from the repository root (the in-place build is imported). The machine is shared:
compare figures within one run.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procinfo import free_port, rss_mb

REPO = Path(__file__).resolve().parents[1]
MODES1 = REPO / "tests" / "data" / "antirez_dump1090_modes1_2000k.cu8"
PY = sys.executable


def child_cost(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(CPU seconds, peak RSS MB) of one child process."""
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO, env=env
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def startup(runs: int, tiny: Path) -> None:
    cases = {
        "python -c pass (floor)": [PY, "-c", "pass"],
        "sensord --help": [PY, "-m", "sensord", "--help"],
        "sensord decode --help": [PY, "-m", "sensord", "decode", "--help"],
        f"sensord decode {tiny.name} ({tiny.stat().st_size // 2} samples)": [
            *(PY, "-m", "sensord", "decode", str(tiny))
        ],
        "sensord decode modes1 (356,868 samples)": [PY, "-m", "sensord", "decode", str(MODES1)],
        "sensord run --help": [PY, "-m", "sensord", "run", "--help"],
    }
    print(f"start-up, median of {runs} runs (CPU = user + system of the process)")
    print(f"  {'command':<48} {'CPU s':>7} {'peak RSS MB':>12}")
    for name, argv in cases.items():
        costs = [child_cost(argv) for _ in range(runs)]
        cpu = statistics.median(c for c, _ in costs)
        rss = statistics.median(r for _, r in costs)
        print(f"  {name:<48} {cpu:7.3f} {rss:12.1f}")


def importtime(module: str) -> tuple[float, dict[str, float]]:
    """Total import time (s) of ``module`` and self time per top-level package."""
    proc = subprocess.run(
        [PY, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    by_package: dict[str, float] = defaultdict(float)
    total = 0.0
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if not m:
            continue
        self_us, cumulative_us, indent, name = int(m[1]), int(m[2]), m[3], m[4]
        top = name.split(".")[0]
        if top == "sensord" and name.count(".") >= 1:
            top = ".".join(name.split(".")[:2])
        by_package[top] += self_us / 1e6
        if len(indent) == 1:  # imported by the -c line itself
            total += cumulative_us / 1e6
    return total, dict(by_package)


# what each command imports before its first sample (run imports its daemon lazily)
COMMAND_IMPORTS = {
    "decode": "sensord.commands.decode, sensord.demod, sensord.frames",
    "run": "sensord.commands.run, sensord.daemon.pipeline, sensord.daemon.outputs, "
    "sensord.daemon.watchdog, sensord.sinks.mqtt",
}


def import_summary() -> None:
    for module in COMMAND_IMPORTS.values():
        total, by_package = importtime(module)
        print(f"\npython -X importtime -c 'import {module}': {total:.3f} s, by package (self time)")
        for name, seconds in sorted(by_package.items(), key=lambda kv: -kv[1])[:12]:
            print(f"  {name:<28} {seconds:7.3f} s")
        heavy = [p for p in ("scipy", "filterpy", "aiomqtt", "rich", "pyModeS", "amqtt")
                 if p in by_package]  # fmt: skip
        print(f"  heavy packages imported: {', '.join(heavy) or 'none'}")


def steady_setup(tmp: Path, seconds: float) -> tuple[Path, subprocess.Popen | None]:
    """A recording, a mosquitto (if installed) and the daemon's configuration."""
    stem = tmp / "steady"
    subprocess.run(
        [PY, "-m", "sensord", "simulate", "-o", str(stem), "--aircraft", "25",
         "--duration", str(seconds + 10), "--seed", "5"],
        check=True, capture_output=True, cwd=REPO,
    )  # fmt: skip
    mosquitto = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    broker, mqtt = None, "[mqtt]\nenabled = false\n"
    if mosquitto:
        port = free_port()
        conf = tmp / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nuser root\n")
        broker = subprocess.Popen([mosquitto, "-c", str(conf)], stderr=subprocess.DEVNULL)
        mqtt = f"[mqtt]\nport = {port}\n"
    cfg = tmp / "run.toml"
    cfg.write_text(
        f'[receiver]\nlat_deg = 52.0\nlon_deg = 4.5\n[source]\nspec = "{stem}.cu8"\n'
        f'realtime = true\n{mqtt}[logging]\nlevel = "warning"\n'
    )
    return cfg, broker


def run_daemon(cfg: Path, seconds: float, importtime: bool) -> tuple[list[float], str]:
    """RSS samples of ``sensord run -c cfg`` every 0.5 s for ``seconds`` after a 3 s warm-up
    (imports, first tracks) and its stderr (with ``importtime``, its import log)."""
    flags = ["-X", "importtime"] if importtime else []
    proc = subprocess.Popen([PY, *flags, "-m", "sensord", "run", "-c", str(cfg)], cwd=REPO,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    samples = []
    try:
        time.sleep(3.0)
        end = time.monotonic() + seconds
        while time.monotonic() < end and proc.poll() is None:
            samples.append(rss_mb(proc.pid))
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    return samples, err


def run_rss(seconds: float, tmp: Path) -> None:
    cfg, broker = steady_setup(tmp, seconds)
    try:
        samples, _ = run_daemon(cfg, seconds, importtime=False)
    finally:
        if broker:
            broker.kill()
            broker.wait()
    if not samples:
        raise SystemExit("sensord run ended before it could be measured")
    where = "with MQTT to a loopback mosquitto" if broker else "MQTT off (no mosquitto here)"
    print(
        f"\nsteady RSS of sensord run (CV tracker, no IMM; 25 aircraft at 2.4 MS/s, real-time "
        f"pace, {where}), {len(samples)} samples over {seconds:g} s after 3 s warm-up: "
        f"median {statistics.median(samples):.1f} MB, max {max(samples):.1f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--run-seconds", type=float, default=12.0)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.2f}")
    if sys.flags.dont_write_bytecode:  # children inherit it: no __pycache__ for sensord
        print("PYTHONDONTWRITEBYTECODE is set: sensord's modules are compiled at every start "
              "(steady RSS about 0.7 MB above an installed sensord's, BENCHMARKS.md)")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp_name:
        tmp = Path(tmp_name)
        tiny = tmp / "tiny_2000k.cu8"
        tiny.write_bytes(MODES1.read_bytes()[:20000])
        startup(args.runs, tiny)
        import_summary()
        run_rss(args.run_seconds, tmp)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"(children's CPU in total: {children.ru_utime + children.ru_stime:.1f} s)")


if __name__ == "__main__":
    main()
