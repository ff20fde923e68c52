"""Fuzz the receive chain and its outputs: random IQ blocks and random Mode S frames.

Blocks: noise of random level, clipped noise, all-zero, all-full-scale, random bytes, in
random sizes (1 to 262144 samples, log-uniform), in every sample format, through the
demodulator, detector and tracker. Frames: random DF17/18 messages with a valid CRC and
random DF0/4/5/11/16/20/21 replies with address parity, from a pool of addresses, through
the detector and tracker. Every step also goes through the output encoders (MQTT payload,
SBS, Beast, aircraft.json entry).

Each batch runs in a worker process, so a crash (a segfault in the Cython core) is
counted, not fatal to the fuzz. Passing: zero crashes, no confirmed track out of noise,
and no track whose address was never sent.

    python benchmarks/fuzz.py [--blocks 1000000] [--frames 1000000] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from sensord.chain import Chain
from sensord.frames import frames_from_hex
from sensord.geo import Site
from sensord.outputs import beast, sbs
from sensord.outputs.aircraft_json import aircraft_entry
from sensord.sinks.base import Step
from sensord.source.base import IQBlock
from sensord.tracker.update import TrackStatus

SITE = Site(52.0, 4.5, 10.0)
ROOT = Path(__file__).resolve().parents[1]
CHILD_ENV = {**os.environ, "PYTHONPATH": str(ROOT)}  # children run this checkout's sensord
RATE_HZ = 2.4e6
FORMATS = ("cu8", "cs8", "cs16", "cf32")
FULL_SCALE = {"cu8": (0, 255), "cs8": (-128, 127), "cs16": (-32768, 32767), "cf32": (-1.0, 1.0)}
DTYPES = {"cu8": np.uint8, "cs8": np.int8, "cs16": np.int16, "cf32": np.float32}
KINDS = ("noise", "clipped", "zero", "full", "bytes")
MAX_BLOCK_SAMPLES = 262144
AP_DFS = (0, 4, 5, 16, 20, 21)


@dataclass
class Tally:
    """What one worker saw."""

    blocks: int = 0
    samples: int = 0
    frames_in: int = 0
    frames_decoded: int = 0
    tracks_created: int = 0
    tracks_confirmed: int = 0
    unexplained_tracks: int = 0
    encoded_bytes: int = 0


def _encode(step: Step) -> int:
    """Every output encoder over the step; returns the bytes produced (so none is skipped)."""
    n = len(beast.encode_frames(step.frames)) + len(sbs.encode_updates(step.updates))
    for u in step.updates:
        n += len(json.dumps(u.to_dict()))
        if u.status is not TrackStatus.DROPPED:
            n += len(json.dumps(aircraft_entry(u, u.t_s, 1, -10.0)))
    return n


class RandomBlocks:
    """A source of random blocks of one format (what a broken dongle or file could send)."""

    def __init__(self, fmt: str, n_blocks: int, seed: int) -> None:
        self.fmt, self.n_blocks, self.rate_hz = fmt, n_blocks, RATE_HZ
        self.rng = np.random.default_rng(seed)
        self.samples = 0
        self.kinds: dict[str, int] = dict.fromkeys(KINDS, 0)
        # a pool of unit Gaussian noise sliced per block: drawing 10^10 values would dominate
        self._noise = self.rng.standard_normal(2 * MAX_BLOCK_SAMPLES + 4096).astype(np.float32)

    def _block(self, n: int) -> np.ndarray:
        lo, hi = FULL_SCALE[self.fmt]
        dtype = DTYPES[self.fmt]
        kind = KINDS[int(self.rng.integers(len(KINDS)))]
        self.kinds[kind] += 1
        if kind == "zero":
            return np.zeros(2 * n, dtype)
        if kind == "full":
            return np.full(2 * n, hi, dtype)
        if kind == "bytes":
            raw = self.rng.integers(0, 256, 2 * n * np.dtype(dtype).itemsize, dtype=np.uint8)
            out = raw.view(dtype).copy()
            if dtype == np.float32:
                out[~np.isfinite(out)] = 0.0  # NaN/inf are not samples: scale them away below
                out = np.clip(out, -1e30, 1e30)
            return out
        start = int(self.rng.integers(4096))
        unit = self._noise[start : start + 2 * n]
        mid = (lo + hi) / 2 if self.fmt == "cu8" else 0.0
        sigma = (hi - lo) / 2 * float(10 ** self.rng.uniform(-3, -0.3))
        if kind == "clipped":
            sigma *= 50
        values = np.clip(mid + sigma * unit, lo, hi)
        return values.astype(dtype) if dtype == np.float32 else np.rint(values).astype(dtype)

    def blocks(self):
        for _ in range(self.n_blocks):
            n = max(1, int(np.exp(self.rng.uniform(0, np.log(MAX_BLOCK_SAMPLES)))))
            yield IQBlock(self._block(n), self.fmt, self.samples, RATE_HZ)
            self.samples += n

    def close(self) -> None:
        return None


def fuzz_blocks(fmt: str, n_blocks: int, seed: int) -> Tally:
    """Random blocks through the whole chain: nothing here is an aircraft."""
    source = RandomBlocks(fmt, n_blocks, seed)
    chain = Chain(RATE_HZ, SITE)
    tally = Tally()
    confirmed: set[str] = set()
    for step in chain.run(source):
        tally.frames_decoded += len(step.frames)
        tally.encoded_bytes += _encode(step)
        confirmed |= {u.track_id for u in step.updates if u.status is TrackStatus.CONFIRMED}
    tally.blocks = n_blocks
    tally.samples = source.samples
    tally.tracks_created = chain.tracker.stats.tracks_created
    tally.tracks_confirmed = len(confirmed)
    tally.unexplained_tracks = len(confirmed)  # a confirmed track out of noise is unexplained
    return tally


def _with_parity(body: bytes, nbits: int, address: int | None) -> bytes:
    from sensord._crc import crc24

    msg = body + b"\0\0\0"
    parity = crc24(msg, nbits) ^ (address or 0)
    return body + parity.to_bytes(3, "big")


def random_frames(n: int, rng: np.random.Generator, pool: np.ndarray) -> list[str]:
    """Random replies: DF17/18 with a valid CRC, the others with address parity."""
    out = []
    for _ in range(n):
        icao = int(rng.choice(pool))
        df = int(rng.choice((17, 17, 17, 18, 11, *AP_DFS)))
        if df in (17, 18, 11):
            head = bytes((df << 3 | int(rng.integers(8)),)) + icao.to_bytes(3, "big")
            nbits = 56 if df == 11 else 112
            body = head + rng.bytes(nbits // 8 - 7)
            out.append(_with_parity(body, nbits, None).hex())
        else:
            nbits = 112 if df >= 16 else 56
            body = bytes((df << 3 | int(rng.integers(8)),)) + rng.bytes(nbits // 8 - 4)
            out.append(_with_parity(body, nbits, icao).hex())
    return out


def fuzz_frames(n_frames: int, seed: int, batch: int = 200) -> Tally:
    """Random frames from 50 addresses through the detector and tracker, 1 s per batch."""
    rng = np.random.default_rng(seed)
    pool = rng.choice(np.arange(1, 1 << 24), size=50, replace=False)
    sent = {f"{int(a):06X}" for a in pool}
    chain = Chain(RATE_HZ, SITE)
    tally = Tally()
    confirmed: set[str] = set()
    unexplained: set[str] = set()
    t_s = 0.0
    for start in range(0, n_frames, batch):
        n = min(batch, n_frames - start)
        times = sorted(t_s + rng.uniform(0, 1.0, n))
        frames = frames_from_hex(random_frames(n, rng, pool), list(times))
        updates = chain.feed_frames(frames) + chain.tracker.clock(t_s + 1.0)
        step = Step(frames, [], updates)
        tally.frames_in += n
        tally.encoded_bytes += _encode(step)
        for u in updates:
            if u.icao is not None and u.icao.upper() not in sent:
                unexplained.add(u.track_id)
            if u.status is TrackStatus.CONFIRMED:
                confirmed.add(u.track_id)
        t_s += 1.0
    chain.tracker.flush()
    tally.tracks_created = chain.tracker.stats.tracks_created
    tally.tracks_confirmed = len(confirmed)
    tally.unexplained_tracks = len(unexplained)
    return tally


def _worker(args: argparse.Namespace) -> int:
    if args.worker == "blocks":
        tally = fuzz_blocks(args.format, args.count, args.seed)
    else:
        tally = fuzz_frames(args.count, args.seed)
    print(json.dumps(asdict(tally)))
    return 0


def _run_batch(kind: str, fmt: str, count: int, seed: int) -> tuple[str, Tally | None, str]:
    cmd = [sys.executable, __file__, "--worker", kind, "--format", fmt]
    cmd += ["--count", str(count), "--seed", str(seed)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=CHILD_ENV)
    if proc.returncode != 0:
        reason = f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:] or ''}"
        return fmt, None, reason
    return fmt, Tally(**json.loads(proc.stdout.strip().splitlines()[-1])), ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blocks", type=float, default=1e6, help="random IQ blocks (default 1e6)")
    p.add_argument("--frames", type=float, default=1e6, help="random frames (default 1e6)")
    p.add_argument("--formats", default=",".join(FORMATS), help="sample formats to fuzz")
    p.add_argument("--batch-blocks", type=int, default=20000, help="blocks per worker process")
    p.add_argument("--batch-frames", type=int, default=100000, help="frames per worker process")
    p.add_argument("--jobs", type=int, default=2, help="worker processes at once")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--worker", choices=("blocks", "frames"), help=argparse.SUPPRESS)
    p.add_argument("--format", default="cu8", help=argparse.SUPPRESS)
    p.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return _worker(args)
    formats = args.formats.split(",")
    batches: list[tuple[str, str, int, int]] = []
    n_blocks, n_frames = int(args.blocks), int(args.frames)
    seed = args.seed * 1_000_003
    for i, start in enumerate(range(0, n_blocks, args.batch_blocks)):
        fmt = formats[i % len(formats)]
        batches.append(("blocks", fmt, min(args.batch_blocks, n_blocks - start), seed + i))
    for i, start in enumerate(range(0, n_frames, args.batch_frames)):
        count = min(args.batch_frames, n_frames - start)
        batches.append(("frames", "-", count, seed + 500_000 + i))
    t0 = time.monotonic()
    totals: dict[str, Tally] = {}
    crashes: dict[str, list[str]] = {}
    with ThreadPoolExecutor(args.jobs) as pool:
        for (kind, _fmt, _n, _s), (fmt, tally, reason) in zip(
            batches, pool.map(lambda b: _run_batch(*b), batches), strict=True
        ):
            key = f"{kind} {fmt}" if kind == "blocks" else "frames"
            if tally is None:
                crashes.setdefault(key, []).append(reason)
                continue
            total = totals.setdefault(key, Tally())
            for name, value in asdict(tally).items():
                setattr(total, name, getattr(total, name) + value)
    wall_s = time.monotonic() - t0
    print(f"fuzz: {len(batches)} worker batches in {wall_s:.0f} s (seed {args.seed})")
    header = "input        blocks   samples      frames  tracks  confirmed  unexplained  crashes"
    print(header)
    for key in sorted(set(totals) | set(crashes)):
        t = totals.get(key, Tally())
        n_crash = len(crashes.get(key, []))
        count = t.blocks if key.startswith("blocks") else t.frames_in
        decoded = t.frames_decoded if key.startswith("blocks") else t.frames_in
        print(
            f"{key:<12} {count:>7} {t.samples:>9.3g} {decoded:>11} {t.tracks_created:>7} "
            f"{t.tracks_confirmed:>10} {t.unexplained_tracks:>12} {n_crash:>8}"
        )
    for key, reasons in crashes.items():
        print(f"crash in {key}: {reasons[0]}")
    unexplained = sum(t.unexplained_tracks for t in totals.values())
    n_crashes = sum(len(r) for r in crashes.values())
    print(f"crashes {n_crashes}, unexplained tracks {unexplained}")
    return 1 if n_crashes or unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
