"""Fuzz the fusion node's subscriptions: random and mutated payloads on info, status and
detections topics of random nodes, interleaved with a real node's traffic.

Counted: exceptions out of the fusion node (must be 0) and tracks that no real aircraft
explains (must be 0: a garbage payload may only ever be counted, never fused).

    python benchmarks/fuzz_fusion.py [--payloads 1000000] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fusion_load import CENTER, Load

from sensord.fusion.fuser import Fuser, FusionConfig

EPOCH_UTC = 1_796_040_000.0
JUNK_VALUES = [None, True, 0, -1, 1e308, float("nan"), float("inf"), "", "x" * 300, [], {}, [[]],
               "FFFFFF", "8D4840D6202CC371C32CE0576098", 2**70]  # fmt: skip


def mutate(doc, rng: random.Random, depth: int = 0):
    """A copy of a JSON document with random keys replaced, dropped or retyped."""
    if isinstance(doc, dict):
        out = {}
        for k, v in doc.items():
            r = rng.random()
            if r < 0.05:
                continue
            out[k] = rng.choice(JUNK_VALUES) if r < 0.15 else mutate(v, rng, depth + 1)
        if rng.random() < 0.05:
            out[rng.choice(["schema", "node", "utc", "z", "R", "observes", "frame"])] = rng.choice(
                JUNK_VALUES
            )
        return out
    if isinstance(doc, list):
        items = [mutate(v, rng, depth + 1) for v in doc]
        if items and rng.random() < 0.1:
            items.pop(rng.randrange(len(items)))
        if rng.random() < 0.05:
            items.append(rng.choice(JUNK_VALUES))
        return items
    if isinstance(doc, float) and rng.random() < 0.1:
        return doc * rng.choice([-1.0, 1e6, 0.0, float("nan")])
    return doc


def payload(rng: random.Random, valid: list[str]) -> bytes:
    kind = rng.random()
    if kind < 0.2:
        return bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 64)))
    doc = json.loads(rng.choice(valid))
    text = json.dumps(mutate(doc, rng), allow_nan=True)
    if kind < 0.3 and text:
        cut = rng.randrange(len(text))
        text = text[:cut]
    return text.encode()


def fuzz(n_payloads: int, seed: int) -> tuple[int, int, int, dict]:
    rng = random.Random(seed)
    load = Load(3, 20, seed=seed)
    real = list(load.batches(30.0, EPOCH_UTC))
    valid = [p for _, _, p, _ in real[:200]]
    valid += [json.dumps(info) for _, info in load.infos()]
    fuser = Fuser(FusionConfig(site=CENTER, reorder_window_s=0.5))
    for node, info in load.infos():
        fuser.node_info(node, info)
    crashes = 0
    k = 0
    for i in range(n_payloads):
        if i % max(n_payloads // len(real), 1) == 0 and k < len(real):
            end_utc, node, good, _ = real[k]
            fuser.ingest(node, good)
            fuser.step(end_utc)
            k += 1
        node = rng.choice(["rx1", "rx2", "fuzz", "fuzz2", ""])
        topic = rng.choice(["info", "status", "detections", "detections"])
        try:
            if topic == "info":
                fuser.node_info(node, payload(rng, valid))
            elif topic == "status":
                fuser.node_status(node, payload(rng, valid))
            else:
                fuser.ingest(node, payload(rng, valid))
        except Exception:
            crashes += 1
            if crashes <= 3:
                traceback.print_exc()
    fuser.flush()
    known = {f"{int(i):06X}" for i in load.icao}
    assert fuser.tracker is not None
    unexplained = sum(1 for t in fuser.tracker.tracks.values() if t.track_id not in known)
    return crashes, unexplained, k, fuser.statistics()["nodes"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--payloads", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    t0 = time.monotonic()
    crashes, unexplained, real, nodes = fuzz(args.payloads, args.seed)
    counted = {
        n: {
            k: v
            for k, v in c.items()
            if k in ("invalid", "waiting_info", "bad_info", "late", "used")
        }
        for n, c in nodes.items()
    }
    print(f"fusion fuzz: {args.payloads:,} payloads (+{real} real batches) in "
          f"{time.monotonic() - t0:.0f} s: {crashes} crashes, {unexplained} unexplained tracks; "
          f"counted {json.dumps(counted)}")  # fmt: skip
    return 1 if crashes or unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
