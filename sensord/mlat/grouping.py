"""Copies of one reply from several receivers, grouped per transmission.

``Copy`` is one receiver's copy (its counter time and UTC); ``Group`` is one transmission
on the network timebase (receivers, arrival times, variances). Identical bytes recur (a
DF11 every second, DF4 twice in a radar burst 8 ms apart), so copies gathered by bytes
are split per transmission: by UTC before the clocks are synchronised (``split_by_utc``),
by network time within the light-time window after (``split_by_time``); one copy per
receiver in each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


class Copy(NamedTuple):
    """One receiver's copy of a reply (a NamedTuple: made for every frame, so cheap)."""

    node: str
    t_s: float  # the node's counter, s
    utc: float


@dataclass
class Group:
    """One transmission heard by several receivers, on the network timebase."""

    icao: int
    msg: bytes
    nodes: list[str]
    t_s: np.ndarray
    var_s2: np.ndarray
    utc: float


def split_by_utc(copies: list[Copy], gap_s: float) -> list[list[Copy]]:
    """Copies of the same bytes, split where their UTCs are further apart than gap_s."""
    ordered = sorted(copies, key=lambda c: c.utc)
    out = [[ordered[0]]]
    nodes = {ordered[0].node}
    for c in ordered[1:]:
        if c.utc - out[-1][-1].utc > gap_s or c.node in nodes:
            out.append([c])
            nodes = {c.node}
        else:
            out[-1].append(c)
            nodes.add(c.node)
    return out


def subset(group: Group, keep: list[int]) -> Group:
    return Group(
        group.icao, group.msg, [group.nodes[i] for i in keep], group.t_s[keep],
        group.var_s2[keep], group.utc,
    )  # fmt: skip


def split_by_time(group: Group, window_s: float) -> list[Group]:
    """One group per transmission: arrivals on the network timebase within the light window."""
    order = np.argsort(group.t_s).tolist()
    t = group.t_s.tolist()
    out: list[list[int]] = [[order[0]]]
    nodes = {group.nodes[order[0]]}
    for i in order[1:]:
        if t[i] - t[out[-1][0]] > window_s:
            out.append([i])
            nodes = {group.nodes[i]}
        elif group.nodes[i] not in nodes:
            out[-1].append(i)
            nodes.add(group.nodes[i])
    return [subset(group, keep) for keep in out]
