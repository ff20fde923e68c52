"""Passive radar simulator: an FM illuminator, a reference and a surveillance channel.

The receiver is the scenario's site; the transmitter is elsewhere (``tx``). Levels come
from the free-space and bistatic radar equations in watts against the receiver's noise
``k T0 B F``:

- reference channel: the direct path (antenna towards the transmitter) plus noise;
- surveillance channel: the direct path attenuated by the antenna's rejection (so it
  sits 40-60 dB above typical echoes), static multipath clutter (fixed delays, no
  Doppler), and every target's echo ``a x(t - R_b(t)/c) exp(-j 2 pi R_b(t) / lambda)``
  with its bistatic range ``R_b`` from the geometry at every sample (range migration and
  Doppler follow), plus noise;
- the receiver: noise, 8-bit quantisation (RTL-SDR), and the surveillance channel late
  by ``skew_samples`` against the reference (two dongles never start together).

Targets are the scenario's aircraft (transponder on), extra aircraft with the
transponder off, and small slow drones. Truth is written per CPI: bistatic range,
range rate, Doppler and the map SNR a matched filter would reach (``map_snr_db``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from sensord.geo import Site
from sensord.radar.geometry import C_MPS, Bistatic
from sensord.sim.fm import FMBroadcast
from sensord.sim.scenario import Aircraft, Leg, Scenario, random_scenario

K_BOLTZMANN = 1.380649e-23
T0_K = 290.0
FULL_SCALE_RMS = 0.25  # each channel's expected RMS at the ADC, full scale 1.0
HISTORY_SAMPLES = 8192  # longest echo delay rendered (about 1,200 km bistatic at 2 MS/s)

TARGET_KINDS = ("aircraft", "dark", "drone")  # transponder on, transponder off, drone

CPI_TRUTH_DTYPE = np.dtype(
    [
        ("cpi", "<i4"),
        ("t_s", "<f8"),  # CPI centre, from the recording start
        ("target", "<i4"),  # index into the targets list of the radar JSON
        ("icao", "<u4"),  # 0 for a target without a transponder
        ("kind", "U8"),
        ("bistatic_range_m", "<f8"),
        ("range_rate_mps", "<f8"),
        ("doppler_hz", "<f8"),
        ("map_snr_db", "<f8"),  # ideal coherent SNR of the echo on the range-Doppler map
        ("echo_dnr_db", "<f8"),  # surveillance direct path over this echo, dB
        ("programme", "<f4"),  # share of the CPI with programme (1 = no pause)
        ("in_map", "?"),  # inside the map's range and Doppler extent
        ("in_notch", "?"),  # within 1.5 Doppler bins of zero: cancelled with the clutter
        ("enu_m", "<f8", (3,)),
        ("vel_enu_mps", "<f8", (3,)),
    ]
)


@dataclass(frozen=True)
class RadarLink:
    """Transmitter, antennas and receiver: what sets every level."""

    erp_w: float = 1000.0  # effective radiated power of the illuminator
    ref_gain_dbi: float = 5.0  # reference antenna towards the transmitter
    surv_gain_dbi: float = 5.0  # surveillance antenna towards the targets
    direct_rejection_db: float = 30.0  # surveillance antenna's rejection of the direct path
    noise_figure_db: float = 6.0
    clutter_scatterers: int = 6
    clutter_db: tuple[float, float] = (-35.0, -15.0)  # each scatterer against the direct path
    clutter_range_m: tuple[float, float] = (3000.0, 9000.0)
    skew_samples: int = 3  # surveillance late by this many samples (negative: early)
    freq_offset_hz: float = 0.0  # surveillance LO offset: non-zero = not on a shared clock
    independent_surveillance: bool = False  # surveillance hears another station (incoherent)
    quantise: bool = True


@dataclass
class RadarTarget:
    """One scatterer that moves: an aircraft (transponder on or off) or a drone."""

    kind: str
    rcs_m2: float
    aircraft: Aircraft  # its trajectory (and identity when the transponder is on)

    @property
    def icao(self) -> int:
        return self.aircraft.icao if self.kind == "aircraft" else 0

    def to_dict(self) -> dict:
        return {"kind": self.kind, "rcs_m2": self.rcs_m2, "aircraft": self.aircraft.to_dict()}


@dataclass
class RadarScene:
    """The bistatic pair, the targets, the link and the recording's layout."""

    bistatic: Bistatic
    targets: list[RadarTarget]
    link: RadarLink = field(default_factory=RadarLink)
    rate_hz: float = 2.0e6
    cpi_s: float = 0.5
    n_range: int = 400
    n_doppler: int = 200

    @property
    def range_cell_m(self) -> float:
        return C_MPS / self.rate_hz

    def to_json(self) -> str:
        return json.dumps(
            {
                **self.bistatic.to_dict(),
                "rate_hz": self.rate_hz,
                "cpi_s": self.cpi_s,
                "n_range": self.n_range,
                "n_doppler": self.n_doppler,
                "link": asdict(self.link),
                "targets": [t.to_dict() for t in self.targets],
            },
            indent=1,
        )


def radar_scene(
    rx: Site,
    tx: Site,
    carrier_hz: float = 98.0e6,
    n_aircraft: int = 8,
    n_dark: int = 3,
    n_drones: int = 3,
    seed: int = 1,
    max_range_m: float = 35e3,
    scenario: Scenario | None = None,
    link: RadarLink | None = None,
    rate_hz: float = 2.0e6,
    cpi_s: float = 0.5,
) -> RadarScene:
    """Targets around the receiver: the scenario's aircraft (or a random one), dark
    aircraft (transponder off) and drones (25-60 kt, 100-400 m, RCS 0.01-0.1 m^2)."""
    rng = np.random.default_rng([seed, 14])
    bistatic = Bistatic(tx, rx, carrier_hz)
    if scenario is None:
        scenario = random_scenario(n_aircraft, rx, max_range_m, seed=seed, min_range_m=3e3)
    targets = [
        RadarTarget("aircraft", float(10 ** rng.uniform(0.0, 2.0)), ac)
        for ac in scenario.aircraft
        if not ac.on_ground
    ]
    dark = random_scenario(n_dark, rx, max_range_m, seed=seed + 1000, min_range_m=3e3)
    for ac in dark.aircraft:
        targets.append(RadarTarget("dark", float(10 ** rng.uniform(0.0, 1.5)), ac))
    for i in range(n_drones):
        r_m, bearing = float(rng.uniform(1.5e3, 6e3)), float(rng.uniform(0, 2 * math.pi))
        drone = Aircraft(
            icao=0xD00000 + i,
            callsign=f"DRONE{i}",
            squawk="7000",
            east_m=r_m * math.sin(bearing),
            north_m=r_m * math.cos(bearing),
            alt_ft=float(rng.uniform(330, 1300)),
            gs_kt=float(rng.uniform(25, 60)),
            track_deg=float(rng.uniform(0, 360)),
            category="B6",
            legs=[Leg(float(rng.uniform(5, 20))), Leg(30.0, float(rng.choice([-6.0, 6.0])))],
            site=rx,
        )
        targets.append(RadarTarget("drone", float(10 ** rng.uniform(-2.0, -1.0)), drone))
    return RadarScene(bistatic, targets, link or RadarLink(), rate_hz, cpi_s)


@dataclass(frozen=True)
class Levels:
    """Per-sample powers (W) in each channel, before scaling to the ADC."""

    noise_w: float
    ref_direct_w: float
    surv_direct_w: float
    clutter_w: np.ndarray  # per scatterer
    clutter_delay: np.ndarray  # samples (fractional)


class _Renderer:
    """Renders both channels chunk by chunk; keeps the FM history for delayed copies."""

    def __init__(self, scene: RadarScene, seed: int) -> None:
        self.scene = scene
        self.link = scene.link
        self.rng = np.random.default_rng([seed, 15])
        self.fm = FMBroadcast(scene.rate_hz, seed)
        self.other_fm = (
            FMBroadcast(scene.rate_hz, seed + 7) if self.link.independent_surveillance else None
        )
        self.levels = self._levels()
        self.history = np.zeros(HISTORY_SAMPLES, dtype=np.complex64)
        self.other_history = np.zeros(HISTORY_SAMPLES, dtype=np.complex64)
        self.n = 0
        self.clutter_phase = np.exp(2j * np.pi * self.rng.random(len(self.levels.clutter_w)))
        self.target_phase0 = self.rng.uniform(0, 2 * np.pi, len(scene.targets))
        lv = self.levels
        ref_total = lv.ref_direct_w + lv.noise_w
        surv_total = lv.surv_direct_w + float(lv.clutter_w.sum()) + lv.noise_w
        self.ref_scale = FULL_SCALE_RMS / math.sqrt(ref_total)
        self.surv_scale = FULL_SCALE_RMS / math.sqrt(surv_total)
        q_w = 2 * (1 / 127.5) ** 2 / 12 if self.link.quantise else 0.0
        self.ref_noise_w = lv.noise_w + q_w / self.ref_scale**2
        self.surv_noise_w = lv.noise_w + q_w / self.surv_scale**2

    def _levels(self) -> Levels:
        s, lk = self.scene, self.link
        lam = s.bistatic.wavelength_m
        path = (lam / (4 * math.pi * s.bistatic.baseline_m)) ** 2
        noise_w = K_BOLTZMANN * T0_K * s.rate_hz * 10 ** (lk.noise_figure_db / 10)
        ref_direct = lk.erp_w * 10 ** (lk.ref_gain_dbi / 10) * path
        surv_direct = lk.erp_w * 10 ** ((lk.surv_gain_dbi - lk.direct_rejection_db) / 10) * path
        n = lk.clutter_scatterers
        clutter_w = surv_direct * 10 ** (self.rng.uniform(*lk.clutter_db, n) / 10)
        delay = self.rng.uniform(*lk.clutter_range_m, n) / s.range_cell_m
        return Levels(noise_w, ref_direct, surv_direct, clutter_w, delay)

    def echo_w(self, target: RadarTarget, pos_ecef: np.ndarray) -> float:
        """Received echo power (W), bistatic radar equation."""
        s, lk = self.scene, self.link
        b = s.bistatic
        rt = float(np.linalg.norm(pos_ecef - b.tx_ecef_m))
        rr = float(np.linalg.norm(pos_ecef - b.rx_ecef_m))
        lam = b.wavelength_m
        return (
            lk.erp_w
            * 10 ** (lk.surv_gain_dbi / 10)
            * lam**2
            * target.rcs_m2
            / ((4 * math.pi) ** 3 * rt**2 * rr**2)
        )

    def map_snr_db(
        self, echo_w: float, n_samples: int, other_echoes_w: float = 0.0, corr_cells: float = 1.0
    ) -> float:
        """Coherent SNR of an echo on the CAF map (no window, straddle or CFAR loss).

        The noise of a map cell: the surveillance channel's noise times the reference
        power; other targets' echoes times the reference power times the reference's
        correlation length in cells (``corr_cells``, sum of |rho|^2 over lags: a
        narrowband echo's pedestal on the map is that much above a white one's); and the
        cancelled direct path and clutter times the reference's own noise.
        """
        lv = self.levels
        p_r = lv.ref_direct_w
        noise = (self.surv_noise_w + other_echoes_w * corr_cells) * (p_r + self.ref_noise_w) + (
            lv.surv_direct_w + float(lv.clutter_w.sum())
        ) * self.ref_noise_w
        return 10 * math.log10(n_samples * echo_w * p_r / noise)

    def _delayed(self, ext: np.ndarray, delay: float, n: int) -> np.ndarray:
        """ext[H + i - delay] for i in 0..n-1 (H = history), cubic Lagrange interpolation."""
        k = max(1, math.floor(delay))
        mu = delay - k  # in [0, 1) except for delays under one sample (extrapolated)
        # nodes at +1, 0, -1, -2 samples from t - k; the value wanted at -mu
        weights = (
            -mu * (1 - mu) * (2 - mu) / 6,
            (mu + 1) * (1 - mu) * (2 - mu) / 2,
            (mu + 1) * mu * (2 - mu) / 2,
            -(mu + 1) * mu * (1 - mu) / 6,
        )
        h = HISTORY_SAMPLES
        out = np.zeros(n, dtype=np.complex64)
        for j, wj in enumerate(weights):
            a = h - k + 1 - j
            out += np.complex64(wj) * ext[a : a + n]
        return out

    def _positions(self, t_s: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """ECEF position and velocity of every target (its trajectory is about its own
        site: a scene shared by several receivers keeps one sky)."""
        out = []
        for tg in self.scene.targets:
            site = tg.aircraft.site or self.scene.bistatic.rx
            rot = site.rot_ecef_to_enu
            st = tg.aircraft.state_at(t_s)
            out.append((site.ecef_m + st.enu_m @ rot, st.vel_enu_mps @ rot))
        return out

    def chunk(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The next n samples of (reference, surveillance), complex64, unscaled (sqrt W)."""
        s, lk, lv = self.scene, self.link, self.levels
        x = self.fm.next(n)
        programme = self.fm.last_programme
        ext = np.concatenate([self.history, x])
        self.history = ext[-HISTORY_SAMPLES:].copy()
        ref = x * np.float32(math.sqrt(lv.ref_direct_w))
        if self.other_fm is not None:
            ext_s = np.concatenate([self.other_history, self.other_fm.next(n)])
            self.other_history = ext_s[-HISTORY_SAMPLES:].copy()
        else:
            ext_s = ext
        surv: np.ndarray = ext_s[HISTORY_SAMPLES:] * np.complex64(math.sqrt(lv.surv_direct_w))
        for a_w, d, ph in zip(lv.clutter_w, lv.clutter_delay, self.clutter_phase, strict=True):
            surv += np.complex64(math.sqrt(a_w) * ph) * self._delayed(ext_s, d, n)
        t0 = self.n / s.rate_hz
        t1 = (self.n + n) / s.rate_hz
        lam = s.bistatic.wavelength_m
        start, end = self._positions(t0), self._positions(t1)
        idx = np.arange(n, dtype=np.float32)
        for i, tg in enumerate(s.targets):
            r0 = float(s.bistatic.range_m(start[i][0]))
            r1 = float(s.bistatic.range_m(end[i][0]))
            delay = 0.5 * (r0 + r1) / s.range_cell_m
            if delay > HISTORY_SAMPLES - 4:
                continue
            amp = math.sqrt(self.echo_w(tg, 0.5 * (start[i][0] + end[i][0])))
            # phase -2 pi R(t) / lambda, R linear over the chunk: start phase taken mod 2 pi
            # in float64 (R / lambda is large), the ramp in float32
            a = (self.target_phase0[i] - 2 * math.pi * r0 / lam) % (2 * math.pi)
            b = -2 * math.pi * (r1 - r0) / (lam * n)
            ramp = idx * np.float32(b)
            ramp += np.float32(a)
            echo = np.empty(n, dtype=np.complex64)
            echo.real, echo.imag = np.cos(ramp), np.sin(ramp)
            echo *= np.float32(amp)
            surv += echo * self._delayed(ext_s, delay, n)
        if lk.freq_offset_hz:
            t = (self.n + np.arange(n)) / s.rate_hz
            surv *= np.exp(2j * np.pi * lk.freq_offset_hz * t).astype(np.complex64)
        sigma = math.sqrt(lv.noise_w / 2)
        ref += (self.rng.standard_normal(2 * n, dtype=np.float32) * sigma).view(np.complex64)
        surv += (self.rng.standard_normal(2 * n, dtype=np.float32) * sigma).view(np.complex64)
        self.n += n
        self.last_programme = programme
        return ref, surv


class _DelayLine:
    """A stream delayed by a whole number of samples (zeros first)."""

    def __init__(self, delay: int) -> None:
        self.buffer = np.zeros(delay, dtype=np.complex64)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        buf = np.concatenate([self.buffer, x])
        self.buffer = buf[len(x) :]
        return buf[: len(x)]


def correlation_cells(x: np.ndarray, max_lag: int) -> float:
    """1 + 2 sum_{k=1}^{max_lag} |rho(k)|^2 of a signal's autocorrelation."""
    from scipy import fft

    n = len(x)
    spec = fft.fft(x, fft.next_fast_len(n + max_lag))
    ac = fft.ifft(spec.real**2 + spec.imag**2)[: max_lag + 1]
    if ac[0].real <= 0:
        return 1.0
    rho2 = np.abs(ac[1:] / ac[0].real) ** 2
    return float(1.0 + 2.0 * rho2.sum())


def quantise_cu8(x: np.ndarray) -> np.ndarray:
    """Complex (full scale 1.0) -> interleaved u8 as an RTL-SDR gives it (127.5 is zero)."""
    v = np.empty(2 * len(x), dtype=np.float32)
    v[0::2], v[1::2] = x.real, x.imag
    return np.clip(np.rint(v * 127.5 + 127.5), 0, 255).astype(np.uint8)


def to_layout(ref_u8: np.ndarray, surv_u8: np.ndarray, fmt: str) -> np.ndarray:
    """Interleave [ref I, ref Q, surv I, surv Q] per sample in ``fmt`` (cu8, cs16, cf32)."""
    out = np.empty((len(ref_u8) // 2, 4), dtype=np.uint8)
    out[:, 0:2] = ref_u8.reshape(-1, 2)
    out[:, 2:4] = surv_u8.reshape(-1, 2)
    flat = out.reshape(-1)
    if fmt == "cu8":
        return flat
    centred = flat.astype(np.float32) - 127.5
    if fmt == "cs16":
        return np.rint(centred * 256).astype("<i2")
    if fmt == "cf32":
        return (centred / 127.5).astype("<f4")
    raise ValueError(f"two-channel format must be cu8, cs16 or cf32, not {fmt!r}")


def render(scene: RadarScene, duration_s: float, seed: int = 1, chunk_s: float = 0.05
           ) -> Iterator[tuple[np.ndarray, np.ndarray, float]]:  # fmt: skip
    """(reference, surveillance, programme share) chunks at the ADC (full scale 1.0)."""
    r = _Renderer(scene, seed)
    total = round(duration_s * scene.rate_hz)
    step = max(1, round(chunk_s * scene.rate_hz))
    skew = scene.link.skew_samples
    ref_line, surv_line = _DelayLine(max(0, -skew)), _DelayLine(max(0, skew))
    done = 0
    while done < total:
        n = min(step, total - done)
        ref, surv = r.chunk(n)
        ref, surv = ref_line(ref), surv_line(surv)
        yield ref * np.float32(r.ref_scale), surv * np.float32(r.surv_scale), r.last_programme
        done += n


NOMINAL_CORR_CELLS = 12.0  # the FM reference's range correlation length at 2 MS/s


def cpi_truth(
    scene: RadarScene,
    duration_s: float,
    seed: int = 1,
    programme: list[float] | None = None,
    corr_cells: list[float] | None = None,
) -> np.ndarray:
    """Truth at every CPI centre (CPI_TRUTH_DTYPE rows, one per target per CPI).

    ``programme`` and ``corr_cells`` per CPI come from the rendering (``simulate_radar``,
    ``record_radar``); without them the programme is taken as never paused.
    """
    r = _Renderer(scene, seed)
    n_cpi = int(duration_s // scene.cpi_s)
    corr = list(corr_cells or []) + [NOMINAL_CORR_CELLS] * n_cpi
    n_samples = round(scene.cpi_s * scene.rate_hz)
    max_range_m = scene.n_range * scene.range_cell_m
    max_doppler = scene.n_doppler / (2 * scene.cpi_s)
    b = scene.bistatic
    rot = b.rx.rot_ecef_to_enu
    dnr_w = r.levels.surv_direct_w
    notch_hz = 1.5 / scene.cpi_s  # the processor's zero-Doppler notch (bins -1..1)
    rows = []
    for k in range(n_cpi):
        t = (k + 0.5) * scene.cpi_s
        states = r._positions(t)
        echoes = [r.echo_w(tg, pos) for tg, (pos, _) in zip(scene.targets, states, strict=True)]
        total_echo_w = sum(echoes)
        for i, (tg, (pos, vel)) in enumerate(zip(scene.targets, states, strict=True)):
            rng_m = float(b.range_m(pos))
            rate = float(b.range_rate_mps(pos, vel))
            dop = float(b.doppler_hz(rate))
            echo = echoes[i]
            rows.append(
                (
                    k,
                    t,
                    i,
                    tg.icao,
                    tg.kind,
                    rng_m,
                    rate,
                    dop,
                    r.map_snr_db(echo, n_samples, total_echo_w - echo, corr[k]),
                    10 * math.log10(dnr_w / echo),
                    programme[k] if programme and k < len(programme) else 1.0,
                    rng_m < max_range_m and abs(dop) < max_doppler,
                    abs(dop) < notch_hz,
                    (pos - b.rx.ecef_m) @ rot.T,
                    vel @ rot.T,
                )
            )
    return np.array(rows, dtype=CPI_TRUTH_DTYPE)


@dataclass
class RadarSim:
    """A short two-channel recording in memory, as the radar reads it (complex64, full
    scale 1.0, 8-bit quantised unless the link says not), with its truth."""

    ref: np.ndarray
    surv: np.ndarray
    truth: np.ndarray
    scene: RadarScene


def _per_cpi(values: list[float], per_cpi: int) -> list[float]:
    return [float(np.mean(values[i : i + per_cpi])) for i in range(0, len(values), per_cpi)]


def simulate_radar(scene: RadarScene, duration_s: float, seed: int = 1) -> RadarSim:
    """Render in memory (keep it short: 16 bytes per sample for both channels)."""
    chunk_s = 0.05
    refs, survs, prog, corr = [], [], [], []
    for ref, surv, p in render(scene, duration_s, seed, chunk_s):
        corr.append(correlation_cells(ref, scene.n_range))
        prog.append(p)
        if scene.link.quantise:
            ref = (quantise_cu8(ref).astype(np.float32) - 127.5) / 127.5
            surv = (quantise_cu8(surv).astype(np.float32) - 127.5) / 127.5
            ref, surv = ref.view(np.complex64), surv.view(np.complex64)
        refs.append(ref)
        survs.append(surv)
    per_cpi = max(1, round(scene.cpi_s / chunk_s))
    truth = cpi_truth(scene, duration_s, seed, _per_cpi(prog, per_cpi), _per_cpi(corr, per_cpi))
    return RadarSim(np.concatenate(refs), np.concatenate(survs), truth, scene)


def record_radar(
    scene: RadarScene,
    stem: str | Path,
    duration_s: float,
    seed: int = 1,
    fmt: str = "cu8",
    sigmf: bool = False,
    start_utc: float = 1.7e9,
) -> list[Path]:
    """Write the two-channel recording, ``STEM.radar.json`` and ``STEM.radar-truth.npz``."""
    from sensord.radar.source import two_channel_suffix, write_two_channel_meta

    stem = Path(stem)
    data = stem.with_suffix(".sigmf-data" if sigmf else two_channel_suffix(fmt))
    programme_by_chunk = []
    corr_by_chunk = []
    chunk_s = 0.05
    with data.open("wb") as fh:
        for ref, surv, prog in render(scene, duration_s, seed, chunk_s):
            corr_by_chunk.append(correlation_cells(ref, scene.n_range))
            if scene.link.quantise:
                ref_u8, surv_u8 = quantise_cu8(ref), quantise_cu8(surv)
                to_layout(ref_u8, surv_u8, fmt).tofile(fh)
            else:
                out = np.empty((len(ref), 2), dtype=np.complex64)
                out[:, 0], out[:, 1] = ref, surv
                if fmt != "cf32":
                    raise ValueError("an unquantised recording must be cf32")
                out.view("<f4").tofile(fh)
            programme_by_chunk.append(prog)
    per_cpi = max(1, round(scene.cpi_s / chunk_s))
    programme = _per_cpi(programme_by_chunk, per_cpi)
    corr = _per_cpi(corr_by_chunk, per_cpi)
    paths = [data]
    if sigmf:
        paths.append(
            write_two_channel_meta(
                data,
                fmt,
                scene.rate_hz,
                scene.bistatic.carrier_hz,
                start_utc,
                description="sensord passive radar simulation",
            )
        )
    js = stem.with_suffix(".radar.json")
    js.write_text(scene.to_json(), encoding="utf-8")
    npz = stem.with_suffix(".radar-truth.npz")
    np.savez_compressed(npz, cpi=cpi_truth(scene, duration_s, seed, programme, corr))
    return [*paths, js, npz]


def load_radar_truth(stem: str | Path) -> np.ndarray:
    """The per-CPI truth written beside a simulated radar recording."""
    stem = Path(stem)
    while stem.suffix:
        stem = stem.with_suffix("")
    with np.load(stem.with_suffix(".radar-truth.npz")) as z:
        return z["cpi"]
