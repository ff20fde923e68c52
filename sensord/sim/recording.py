"""Simulated recordings: the IQ samples of a scenario plus the truth of every frame.

``simulate`` returns a short recording in memory; ``record`` streams a recording of any
length to disk chunk by chunk (memory bounded). Both write the same truth:

``TRUTH_DTYPE`` (one row per transmitted reply): ``msg``/``nbits``/``df``/``icao`` as in
``sensord.frames``; ``sample_idx`` (f8, preamble start, sub-sample); ``t_s``; ``snr_db``
(pulse power over noise power per sample); ``signal_dbfs`` (pulse amplitude, full scale =
1.0); ``overlapped`` (another reply overlaps it in time); ``injected_error_bits`` (bits
flipped in what was sent; ``msg`` holds the correct reply); ``clipped`` (a sample of
the reply's span sits at the u8 rail, 0 or 255, in the recording as written; set while
the samples are rendered, so complete once ``simulate``/``record`` return);
``bad_position`` (a deliberately wrong position, see ``scenario.PositionFault``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sensord.sim import modulate
from sensord.sim.scenario import Scenario
from sensord.sim.schedule import PlannedFrame, plan_frames, range_m
from sensord.source import sigmf

TRUTH_DTYPE = np.dtype(
    [
        ("msg", "u1", (14,)),
        ("nbits", "u1"),
        ("df", "u1"),
        ("icao", "<u4"),
        ("sample_idx", "<f8"),
        ("t_s", "<f8"),
        ("snr_db", "<f4"),
        ("signal_dbfs", "<f4"),
        ("overlapped", "?"),
        ("injected_error_bits", "u1"),
        ("clipped", "?"),
        ("bad_position", "?"),
        ("t_emit_s", "<f8"),  # scenario time the reply was sent (t_s is when it arrived)
    ]
)
C_AIR_MPS = 299_792_458.0 / 1.0003
TRAJECTORY_DTYPE = np.dtype(
    [
        ("icao", "<u4"),
        ("t_s", "<f8"),
        ("lat_deg", "<f8"),
        ("lon_deg", "<f8"),
        ("alt_baro_ft", "<f8"),
        ("alt_geom_ft", "<f8"),
        ("gs_kt", "<f8"),
        ("track_deg", "<f8"),
        ("vrate_fpm", "<f8"),
        ("enu_m", "<f8", (3,)),  # site ENU
        ("vel_enu_mps", "<f8", (3,)),
        ("on_ground", "?"),
    ]
)


@dataclass(frozen=True)
class Channel:
    """Link budget and receiver: what sets each reply's level and the noise."""

    noise_sigma: float = 0.03  # per I/Q component, full scale 1.0 (about -27.5 dBFS)
    tx_power_dbm: tuple[float, float] = (51.0, 57.0)
    rx_gain_db: float = 2.0  # antenna gain minus cable loss
    noise_floor_dbm: float = -106.0  # kTB over 2 MHz plus a 5 dB noise figure
    fading_sigma_db: float = 1.5
    freq_offset_hz: float = 40e3  # carrier offsets drawn from +-this
    bit_error_fraction: float = 0.0  # fraction of replies sent with one bit flipped
    noise: bool = True  # False: same reply levels (still set by noise_sigma), no noise added
    # the dongle's low-pass at this fraction of the sample rate (modulate.BAND_FRACTION
    # matches real recordings); 0: the Gaussian pulse filter alone, sharper than real pulses
    band_fraction: float = 0.0


@dataclass
class SimResult:
    """A recording in memory: ``iq`` is interleaved cu8, I first."""

    iq: np.ndarray
    rate_hz: float
    truth: np.ndarray
    scenario: Scenario
    duration_s: float

    def trajectories(self, step_s: float = 0.1) -> np.ndarray:
        return sample_trajectories(self.scenario, self.duration_s, step_s)


@dataclass
class Truth:
    """What ``load_truth`` gives back."""

    frames: np.ndarray
    trajectories: np.ndarray
    scenario: Scenario


@dataclass(frozen=True)
class Receiver:
    """Where one receiver of a network sits and how its sample clock reads true time.

    ``enu_m`` is its position in the scenario site's ENU frame. ``local_s`` maps the true
    (scenario) time of an arrival to the receiver's sample-clock seconds; the default is
    ``t - start_s`` (its recording started at scenario time ``start_s``, an exact clock).
    Beyond ``coverage_m`` a reply loses ``beyond_coverage_db`` (terrain, antenna pattern).
    """

    enu_m: tuple[float, float, float]
    start_s: float = 0.0
    coverage_m: float = math.inf
    beyond_coverage_db: float = 30.0
    local_s: Callable[[np.ndarray], np.ndarray] | None = None
    plan_span_s: float | None = None  # scenario time planned, the same for every receiver

    def sample_clock_s(self, t_true_s: np.ndarray) -> np.ndarray:
        if self.local_s is not None:
            return self.local_s(t_true_s)
        return t_true_s - self.start_s


class _Plan:
    """Frames with their channel draws, ready to be rendered chunk by chunk.

    With a ``receiver`` the frames are as that receiver of a network hears them: delayed by
    the propagation time, levelled by its range, timed by its clock, and only those that
    fall inside its recording. Without one, as the scenario site hears them at once.
    """

    def __init__(
        self,
        scenario: Scenario,
        rate_hz: float,
        duration_s: float,
        seed: int,
        channel: Channel,
        receiver: Receiver | None = None,
        plan_seed: int | None = None,
    ) -> None:
        rng = np.random.default_rng(seed)
        self.rate_hz = rate_hz
        self.channel = channel
        self.rng = rng
        # a network's receivers share the replies sent (plan_seed) and draw their own channel
        plan_rng = rng if plan_seed is None else np.random.default_rng(plan_seed)
        span_s = duration_s
        if receiver is not None:
            span_s = receiver.plan_span_s or duration_s + receiver.start_s
        frames = plan_frames(scenario, span_s, plan_rng)
        tx_rng = rng if plan_seed is None else np.random.default_rng([plan_seed, 7])
        tx = {ac.icao: float(tx_rng.uniform(*channel.tx_power_dbm)) for ac in scenario.aircraft}
        aircraft = {ac.icao: ac for ac in scenario.aircraft}
        if receiver is not None:
            frames, arrival_s, dist_m = _heard_by(frames, aircraft, receiver, rate_hz, duration_s)
        else:
            arrival_s = np.array([f.t_s for f in frames])
            dist_m = np.array([range_m(aircraft[f.icao], f.t_s) for f in frames])
        n = len(frames)
        self.frames: list[PlannedFrame] = frames
        self.sent: list[bytes] = []
        self.truth = np.zeros(n, dtype=TRUTH_DTYPE)
        amp = np.zeros(n)
        for i, f in enumerate(frames):
            rx_dbm = tx[f.icao] + channel.rx_gain_db - modulate.fspl_db(float(dist_m[i]))
            if receiver is not None and dist_m[i] > receiver.coverage_m:
                rx_dbm -= receiver.beyond_coverage_db
            snr_db = rx_dbm - channel.noise_floor_dbm + rng.normal(0, channel.fading_sigma_db)
            amp[i] = channel.noise_sigma * math.sqrt(2) * 10 ** (snr_db / 20)
            row = self.truth[i]
            row["msg"][: len(f.msg)] = np.frombuffer(f.msg, dtype=np.uint8)
            row["nbits"] = len(f.msg) * 8
            row["df"] = f.msg[0] >> 3
            row["icao"] = f.icao
            row["t_s"] = arrival_s[i]
            row["t_emit_s"] = f.t_s
            row["sample_idx"] = arrival_s[i] * rate_hz
            row["snr_db"] = snr_db
            row["signal_dbfs"] = 20 * math.log10(amp[i])
            row["bad_position"] = f.bad_position
            sent = f.msg
            if rng.random() < channel.bit_error_fraction:
                bit = int(rng.integers(5, len(f.msg) * 8))
                flipped = bytearray(f.msg)
                flipped[bit // 8] ^= 0x80 >> (bit % 8)
                sent = bytes(flipped)
                row["injected_error_bits"] = 1
            self.sent.append(sent)
        self.amplitude = amp
        self.phase = rng.uniform(0, 2 * np.pi, n)
        self.freq = rng.uniform(-channel.freq_offset_hz, channel.freq_offset_hz, n)
        start = self.truth["sample_idx"]
        end = start + np.array(
            [modulate.reply_duration_samples(int(b), rate_hz) for b in self.truth["nbits"]]
        )
        prev_end = np.maximum.accumulate(np.concatenate([[-np.inf], end[:-1]]))
        next_start = np.concatenate([start[1:], [np.inf]])
        self.truth["overlapped"] = (prev_end > start) | (next_start < end)
        self.start = start
        self.end = end

    def chunks(self, n_samples: int, chunk_samples: int) -> Iterator[tuple[int, np.ndarray]]:
        """(first sample, cu8 interleaved) chunks covering n_samples."""
        sigma = self.channel.noise_sigma
        band_hz = self.channel.band_fraction * self.rate_hz or None
        k = 0
        for c0 in range(0, n_samples, chunk_samples):
            c1 = min(c0 + chunk_samples, n_samples)
            if self.channel.noise:
                noise = self.rng.standard_normal(2 * (c1 - c0), dtype=np.float32)
                noise *= sigma
                iq = noise.view(np.complex64)  # interleaved I, Q pairs
            else:
                iq = np.zeros(c1 - c0, dtype=np.complex64)
            while k < len(self.frames) and self.end[k] + 64 < c0:
                k += 1
            i = k
            spans = []
            while i < len(self.frames) and self.start[i] - 64 < c1:
                first, wave = modulate.sampled_reply(
                    self.sent[i],
                    self.start[i],
                    self.rate_hz,
                    self.amplitude[i],
                    self.phase[i],
                    self.freq[i],
                    band_hz,
                )
                a, b = max(first, c0), min(first + len(wave), c1)
                if a < b:
                    iq[a - c0 : b - c0] += wave[a - first : b - first]
                    spans.append((i, a - c0, b - c0))
                i += 1
            cu8 = modulate.to_cu8(iq)
            rail = (cu8 == 0) | (cu8 == 255)
            at_rail = rail[0::2] | rail[1::2]
            for j, a, b in spans:
                if at_rail[a:b].any():
                    self.truth["clipped"][j] = True
            yield c0, cu8


def _heard_by(
    frames: list[PlannedFrame],
    aircraft: dict,
    receiver: Receiver,
    rate_hz: float,
    duration_s: float,
) -> tuple[list[PlannedFrame], np.ndarray, np.ndarray]:
    """The frames inside the receiver's recording, in arrival order, with their
    sample-clock arrival times (s) and ranges (m)."""
    rx = np.asarray(receiver.enu_m, dtype=float)
    emit_s = np.array([f.t_s for f in frames])
    dist_m = np.array(
        [float(np.linalg.norm(aircraft[f.icao].state_at(f.t_s).enu_m - rx)) for f in frames]
    )
    local_s = receiver.sample_clock_s(emit_s + dist_m / C_AIR_MPS)
    margin_s = 200e-6  # a whole reply inside the recording
    keep = np.flatnonzero((local_s >= 0) & (local_s < duration_s - margin_s))
    keep = keep[np.argsort(local_s[keep], kind="stable")]
    return [frames[i] for i in keep], local_s[keep], dist_m[keep]


def _n_samples(rate_hz: float, duration_s: float) -> int:
    return round(rate_hz * duration_s)


def _channel(channel: Channel | None, options: dict) -> Channel:
    """The channel with keyword overrides (``bit_error_fraction=0.1``, ``noise_sigma=...``)."""
    try:
        return dataclasses.replace(channel or Channel(), **options)
    except TypeError:
        known = ", ".join(f.name for f in dataclasses.fields(Channel))
        raise TypeError(f"unknown channel option in {sorted(options)}; known: {known}") from None


def simulate(
    scenario: Scenario,
    rate_hz: float = 2.4e6,
    duration_s: float = 10.0,
    seed: int = 1,
    channel: Channel | None = None,
    **channel_options: float,
) -> SimResult:
    """A recording of the scenario in memory (keep it short: 2 bytes per sample).

    Channel settings come from ``channel`` and/or keyword overrides of its fields, e.g.
    ``simulate(sc, bit_error_fraction=0.2, noise_sigma=0.02)``.
    """
    plan = _Plan(scenario, rate_hz, duration_s, seed, _channel(channel, channel_options))
    n = _n_samples(rate_hz, duration_s)
    iq = np.concatenate([c for _, c in plan.chunks(n, 1 << 20)])
    return SimResult(iq, rate_hz, plan.truth, scenario, duration_s)


def sample_trajectories(scenario: Scenario, duration_s: float, step_s: float = 0.1) -> np.ndarray:
    """Every aircraft's truth (``Aircraft.state_at``) every step_s, as TRAJECTORY_DTYPE rows."""
    times = np.arange(0.0, duration_s + 1e-9, step_s)
    rows = []
    for ac in scenario.aircraft:
        for t in times:
            st = ac.state_at(float(t))
            rows.append(
                (
                    ac.icao,
                    t,
                    st.lat_deg,
                    st.lon_deg,
                    st.alt_baro_ft,
                    st.alt_geom_ft,
                    st.gs_kt,
                    st.track_deg,
                    st.vrate_fpm,
                    st.enu_m,
                    st.vel_enu_mps,
                    ac.on_ground,
                )
            )
    return np.array(rows, dtype=TRAJECTORY_DTYPE)


def _data_path(stem: Path, fmt: str) -> Path:
    if fmt not in ("cu8", "sigmf"):
        raise ValueError(f"recording format must be 'cu8' or 'sigmf', not {fmt!r}")
    return stem.with_suffix(".sigmf-data") if fmt == "sigmf" else stem.with_suffix(".cu8")


def _write_truth(
    stem: Path, truth: np.ndarray, scenario: Scenario, duration_s: float
) -> list[Path]:
    npz = stem.with_suffix(".truth.npz")
    np.savez_compressed(npz, frames=truth, trajectories=sample_trajectories(scenario, duration_s))
    js = stem.with_suffix(".scenario.json")
    js.write_text(scenario.to_json(), encoding="utf-8")
    return [npz, js]


def _write_meta(
    data: Path, fmt: str, rate_hz: float, seed: int | None, start_utc: float | None = None
) -> list[Path]:
    if fmt != "sigmf":
        return []
    extra = {"sensord:seed": seed} if seed is not None else {}
    return [
        sigmf.write_meta(
            data,
            "cu8",
            rate_hz,
            description="sensord simulation",
            extra_global=extra,
            start_utc=start_utc,
        )
    ]


def write_recording(res: SimResult, stem: str | Path, fmt: str = "cu8") -> list[Path]:
    """Write an in-memory recording: data (+ SigMF meta), truth frames and scenario."""
    stem = Path(stem)
    data = _data_path(stem, fmt)
    res.iq.tofile(data)
    return [
        data,
        *_write_meta(data, fmt, res.rate_hz, None),
        *_write_truth(stem, res.truth, res.scenario, res.duration_s),
    ]


def record(
    scenario: Scenario,
    stem: str | Path,
    rate_hz: float = 2.4e6,
    duration_s: float = 60.0,
    seed: int = 1,
    fmt: str = "cu8",
    channel: Channel | None = None,
    chunk_s: float = 1.0,
    receiver: Receiver | None = None,
    plan_seed: int | None = None,
    start_utc: float | None = None,
    progress: Callable[[float], None] | None = None,
    **channel_options: float,
) -> tuple[list[Path], np.ndarray]:
    """Stream a recording of any length to disk; returns (paths written, truth frames).

    Memory holds one ``chunk_s`` of samples at a time (plus the frame plan). ``receiver``
    and ``plan_seed`` make it one receiver's recording of a network (``sim.network``);
    ``start_utc`` goes into SigMF's ``core:datetime``. ``progress(fraction)`` is called
    after each chunk written.
    """
    stem = Path(stem)
    plan = _Plan(
        scenario,
        rate_hz,
        duration_s,
        seed,
        _channel(channel, channel_options),
        receiver,
        plan_seed,
    )
    data = _data_path(stem, fmt)
    n_samples = _n_samples(rate_hz, duration_s)
    with data.open("wb") as fh:
        for first, chunk in plan.chunks(n_samples, int(chunk_s * rate_hz)):
            chunk.tofile(fh)
            if progress is not None:
                progress(min(1.0, (first + chunk.shape[0] // 2) / n_samples))
    paths = [
        data,
        *_write_meta(data, fmt, rate_hz, seed, start_utc),
        *_write_truth(stem, plan.truth, scenario, duration_s),
    ]
    return paths, plan.truth


def load_truth(stem: str | Path) -> Truth:
    """The truth written beside a simulated recording."""
    stem = Path(stem)
    for suffix in (".cu8", ".sigmf-data", ".sigmf-meta"):
        if stem.suffix == suffix:
            stem = stem.with_suffix("")
    with np.load(stem.with_suffix(".truth.npz")) as z:
        frames, traj = z["frames"], z["trajectories"]
    return Truth(frames, traj, Scenario.load(stem.with_suffix(".scenario.json")))
