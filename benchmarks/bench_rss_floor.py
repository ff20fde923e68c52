"""What the steady RSS of ``sensord run`` is made of (issue 11, item 4).

1. ``python -X importtime`` of ``sensord run`` (the configuration of bench_startup's steady
   RSS: 25 simulated aircraft at 2.4 MS/s, real-time pace, MQTT to a loopback mosquitto)
   for a few seconds: every module the running daemon imports, and who imported it first.
2. For each group below, the marginal RSS: a fresh interpreter imports every other module
   the daemon holds except sensord's own (which need the group), then the group (its first
   import with all it pulled in); the rise is what the daemon would save without it
   (dependencies another group also needs stay). sensord's own modules come last.
3. RSS of the interpreter alone, of all the daemon's modules imported with nothing running,
   and of the daemon itself (median over a few seconds): the rest is what running adds.

Usage: python benchmarks/bench_rss_floor.py [--repeat 3] [--run-seconds 8]
Run from the repository root; the machine is shared: compare figures within one run.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_startup import run_daemon, steady_setup

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
# the group's first import; (label, module names); sensord's own modules are one group
GROUPS = [
    ("numpy", ["numpy"]),
    ("asyncio (with ssl, OpenSSL's libcrypto)", ["asyncio"]),
    ("pyModeS (with importlib.metadata, zipfile, csv)", ["pyModeS"]),
    ("aiomqtt, paho (urllib.request, http, email, uuid)", ["aiomqtt"]),
    ("logging, argparse, typing (cli)", ["logging", "argparse", "typing"]),
    ("tomllib, dataclasses (config)", ["tomllib", "dataclasses"]),
    ("json", ["json"]),
]
NOT_IMPORTABLE = {"sitecustomize", "_distutils_hack", "nt", "_winapi", "msvcrt", "fcntl"}

MEASURE = """
import gc, importlib, sys
def rss_mb():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
def load(names):
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # optional imports the daemon tried (and caught) itself
before, group = sys.argv[1].split(','), sys.argv[2].split(',')
load([n for n in before if n])
gc.collect()
r0 = rss_mb()
load([n for n in group if n])
gc.collect()
print(r0, rss_mb())
"""


def import_tree(log: str) -> list[tuple[int, str]]:
    """(depth, module) in importtime's order: a module's imports come before it."""
    rows = []
    for line in log.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+\d+ \|( *)(\S+)", line)
        if m:
            rows.append((len(m[1]), m[2]))
    return rows


def subtree(rows: list[tuple[int, str]], name: str) -> list[str]:
    """``name`` and what its first import pulled in."""
    for i, (depth, module) in enumerate(rows):
        if module == name:
            out, j = [module], i - 1
            while j >= 0 and rows[j][0] > depth:
                out.append(rows[j][1])
                j -= 1
            return out
    return []


def importable(rows: list[tuple[int, str]]) -> list[str]:
    return [m for _, m in rows if m not in NOT_IMPORTABLE and not m.startswith("__editable__")]


def marginal(before: list[str], group: list[str], repeat: int) -> tuple[float, float]:
    """Median (RSS before, rise) of importing ``group`` after ``before``, fresh interpreters."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run([PY, "-c", MEASURE, ",".join(before), ",".join(group)],
                             capture_output=True, text=True, check=True, cwd=REPO)  # fmt: skip
        r0, r1 = map(float, out.stdout.split())
        runs.append((r0, r1 - r0))
    return statistics.median(r for r, _ in runs), statistics.median(d for _, d in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--run-seconds", type=float, default=8.0)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="bench-rss-") as tmp_name:
        cfg, broker = steady_setup(Path(tmp_name), args.run_seconds)
        try:
            _, log = run_daemon(cfg, 2.0, importtime=True)
            samples, _ = run_daemon(cfg, args.run_seconds, importtime=False)
        finally:
            if broker:
                broker.kill()
                broker.wait()
    rows = import_tree(log)
    modules = importable(rows)
    print(f"modules the running daemon imported: {len(rows)}")
    print(f"\n  {'group':<52} {'modules':>7} {'marginal MB':>12}")
    total = 0.0
    for label, names in GROUPS:
        group = sorted({m for name in names for m in subtree(rows, name)})
        others = [m for m in modules if m not in group and not m.startswith("sensord")]
        _, rise = marginal(others, group, args.repeat)
        total += rise
        print(f"  {label:<52} {len(group):7d} {rise:12.2f}")
    own = [m for m in modules if m.startswith("sensord")]
    _, rise = marginal([m for m in modules if not m.startswith("sensord")], own, args.repeat)
    print(f"  {'sensord (its own modules and extensions)':<52} {len(own):7d} {rise:12.2f}")
    bare, everything = marginal([], modules, args.repeat)
    rest = everything - total - rise
    print(f"  {'the rest: stdlib of no group, and what groups share':<52} {'':7} {rest:12.2f}")
    steady = statistics.median(samples)
    print(f"\n  interpreter alone: {bare:.1f} MB; every module the daemon imports, nothing "
          f"running: {bare + everything:.1f} MB")  # fmt: skip
    print(f"  sensord run, steady (median of {len(samples)} samples): {steady:.1f} MB; "
          f"running adds {steady - bare - everything:.1f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
