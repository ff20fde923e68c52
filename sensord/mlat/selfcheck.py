"""Self-check: multilaterate ADS-B aircraft and compare with their own positions.

For a sample of ADS-B position messages the engine solves the reply as if the aircraft
sent no position and records here:

- the disagreement: horizontal distance between the MLAT solution and the message's own
  position (network-wide, and for every receiver and pair that took part);
- each receiver's timing residual at the aircraft's own position (range m: its arrival
  on the network timebase minus the propagation from the ADS-B position, less the
  group's median). A receiver at a wrong surveyed position, or with a broken clock, has
  residuals that change with the aircraft's direction; healthy ones stay near the
  timestamp noise.

``suspects()`` names receivers whose median residual is both large in absolute terms and
well above the others'; the engine excludes them (status says which, and why).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

WINDOW = 200


@dataclass
class SelfCheckConfig:
    """When a receiver counts as bad."""

    min_samples: int = 15
    abs_limit_m: float = 120.0  # median |residual| above this ...
    rel_limit: float = 3.0  # ... and this many times the others' median


def _stats(values: deque) -> dict:
    if not values:
        return {"n": 0, "median_m": None, "p95_m": None}
    a = np.fromiter(values, dtype=float)
    return {
        "n": int(a.size),
        "median_m": round(float(np.median(a)), 1),
        "p95_m": round(float(np.percentile(a, 95)), 1),
    }


@dataclass
class SelfCheck:
    """Recent disagreements and residuals per receiver and per pair."""

    cfg: SelfCheckConfig = field(default_factory=SelfCheckConfig)
    overall: deque = field(default_factory=lambda: deque(maxlen=WINDOW))
    inside: deque = field(default_factory=lambda: deque(maxlen=WINDOW))
    outside: deque = field(default_factory=lambda: deque(maxlen=WINDOW))
    by_node: dict[str, deque] = field(default_factory=dict)
    residual_by_node: dict[str, deque] = field(default_factory=dict)
    by_pair: dict[str, deque] = field(default_factory=dict)

    def record_residuals(self, nodes: list[str], residuals_m: np.ndarray) -> None:
        """Timing residuals (m) of one reply at the aircraft's own position."""
        res = residuals_m - np.median(residuals_m)
        for node, r in zip(nodes, res, strict=True):
            self.residual_by_node.setdefault(node, deque(maxlen=WINDOW)).append(abs(float(r)))

    def record_solution(self, nodes: list[str], disagreement_m: float, inside: bool) -> None:
        """Horizontal distance between an MLAT solution and the ADS-B position.

        ``inside``: the aircraft is within the network (no farther from the receivers'
        centroid than the farthest receiver); outside, geometry alone spreads the errors.
        """
        self.overall.append(disagreement_m)
        (self.inside if inside else self.outside).append(disagreement_m)
        for i, a in enumerate(nodes):
            self.by_node.setdefault(a, deque(maxlen=WINDOW)).append(disagreement_m)
            for b in nodes[i + 1 :]:
                key = f"{a}~{b}" if a < b else f"{b}~{a}"
                self.by_pair.setdefault(key, deque(maxlen=WINDOW)).append(disagreement_m)

    def forget(self, node: str) -> None:
        """Drop a receiver's history (its surveyed position changed)."""
        self.residual_by_node.pop(node, None)
        self.by_node.pop(node, None)
        for key in [k for k in self.by_pair if node in k.split("~")]:
            del self.by_pair[key]

    def suspects(self) -> dict[str, str]:
        """Receivers to exclude, each with the reason."""
        medians = {
            n: float(np.median(np.fromiter(v, dtype=float)))
            for n, v in self.residual_by_node.items()
            if len(v) >= self.cfg.min_samples
        }
        out = {}
        for node, med in medians.items():
            others = [m for n, m in medians.items() if n != node]
            if not others:
                continue
            typical = float(np.median(others))
            if med > self.cfg.abs_limit_m and med > self.cfg.rel_limit * typical:
                out[node] = (
                    f"self-check residual median {med:.0f} m vs {typical:.0f} m for the others:"
                    " wrong surveyed position or a broken clock"
                )
        return out

    def status(self) -> dict:
        nodes = sorted(set(self.by_node) | set(self.residual_by_node))
        empty: deque = deque()
        return {
            "disagreement": _stats(self.overall),
            "disagreement_inside": _stats(self.inside),
            "disagreement_outside": _stats(self.outside),
            "receivers": {
                n: {
                    "disagreement": _stats(self.by_node.get(n, empty)),
                    "residual": _stats(self.residual_by_node.get(n, empty)),
                }
                for n in nodes
            },
            "pairs": {k: _stats(v) for k, v in sorted(self.by_pair.items())},
        }
