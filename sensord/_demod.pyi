"""Type stub of the Cython demodulator core (cext/demod.pyx)."""

import numpy as np
import numpy.typing as npt

def magnitude(samples: npt.NDArray[np.generic], fmt: str, out: npt.NDArray[np.uint16]) -> None: ...
def median_u16(x: npt.NDArray[np.uint16]) -> float: ...

class DemodCore:
    rate_hz: float
    sps: float
    nphase: int
    win: int
    frame_len: int
    pre_len: int
    fix_bits: int
    icao_ttl_samples: int
    thresh_pulse: float
    thresh_quiet: float
    max_phases: int
    min_clarity: float
    edge_max_residual: float
    chase_bits: int
    chase_flips: int
    chase_flips_ap: int
    chase_max_soft: float
    toa_fit: bool
    partial_preambles: bool
    n_candidates: int
    n_phase_trials: int
    def __init__(
        self,
        rate_hz: float,
        fix_bits: int = 1,
        icao_ttl_s: float = 60.0,
        nphase: int = 6,
        thresh_pulse: float = 2.0,
        thresh_quiet: float = 1.0,
        max_phases: int = 3,
        min_clarity: float = 0.2,
        edge_max_residual: float = 0.1,
        chase_bits: int = 12,
        chase_flips: int = 3,
        chase_flips_ap: int = 2,
        chase_max_soft: float = 0.5,
    ) -> None: ...
    def icao_known(self, addr: int, now_sample: int) -> int: ...
    def icao_add(self, addr: int, now_sample: int, confirmed: bool = True) -> None: ...
    def process(
        self,
        mag: npt.NDArray[np.uint16],
        base_sample: int,
        start: int,
        stop: int,
        noise_mag: float,
        out_msg: npt.NDArray[np.uint8],
        out_nbits: npt.NDArray[np.int32],
        out_addr: npt.NDArray[np.uint32],
        out_pos: npt.NDArray[np.float64],
        out_toa: npt.NDArray[np.float64],
        out_power: npt.NDArray[np.float32],
        out_fixed: npt.NDArray[np.uint8],
        out_confirmed: npt.NDArray[np.uint8],
    ) -> tuple[int, int]: ...
