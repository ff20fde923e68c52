"""ADS-B quality indicators -> measurement standard deviations.

NACp gives the 95% bound on horizontal position error (EPU), NUCp (version 0) a
containment radius; NACv the 95% bound on horizontal velocity error. A 95% horizontal
radius r of a circular Gaussian has sigma = r / 2.448 per axis. Unknown quality gets
the conservative default of each table. CPR quantisation (about 5 m airborne) and
altitude quantisation (25 ft) are added. NIC and SIL bound integrity (containment with a
probability), not accuracy, so they do not enter the covariance; for version 2, where the
type code encodes NIC rather than NUCp, the NUCp table is only the fallback before a
NACp (TC 31 or TC 29) has been seen (a containment radius, normally wider than the 95%
accuracy bound).
"""

from __future__ import annotations

import math

R95_TO_SIGMA = 1.0 / math.sqrt(-2.0 * math.log(0.05))  # 2-D: 95% radius -> per-axis sigma
CPR_QUANT_SIGMA_M = 3.0
ALT_SIGMA_M = 10.0  # 25 ft steps plus barometric noise
SURFACE_HEIGHT_SIGMA_M = 50.0  # surface positions carry no height (airport vs receiver)
VRATE_SIGMA_MPS = 1.0  # 64 ft/min steps plus barometric noise

# NACp -> EPU (95% horizontal bound), metres (DO-260B table 2-14)
NACP_EPU_M = {
    11: 3.0,
    10: 10.0,
    9: 30.0,
    8: 92.6,
    7: 185.2,
    6: 555.6,
    5: 926.0,
    4: 1852.0,
    3: 3704.0,
    2: 7408.0,
    1: 18520.0,
}
# airborne position type code -> NUCp containment radius (version 0), metres
TC_NUCP_RC_M = {
    9: 7.5,
    10: 25.0,
    11: 185.2,
    12: 370.4,
    13: 926.0,
    14: 1852.0,
    15: 3704.0,
    16: 18520.0,
    17: 37040.0,
    20: 7.5,
    21: 25.0,
}
# surface type codes (version 0)
TC_NUCP_RC_M.update({5: 7.5, 6: 25.0, 7: 185.2, 8: 1852.0})
# NACv -> 95% horizontal velocity error bound, m/s
NACV_BOUND_MPS = {4: 0.3, 3: 1.0, 2: 3.0, 1: 10.0}
UNKNOWN_POSITION_R95_M = 5000.0
UNKNOWN_VELOCITY_R95_MPS = 15.0


def position_sigma_m(typecode: int, nac_p: int | None) -> float:
    """Per-axis horizontal sigma of an ADS-B position: NACp when known (v1/v2), else NUCp."""
    if nac_p is not None and nac_p in NACP_EPU_M:
        r95 = NACP_EPU_M[nac_p]
    else:
        r95 = TC_NUCP_RC_M.get(typecode, UNKNOWN_POSITION_R95_M)
    return math.hypot(r95 * R95_TO_SIGMA, CPR_QUANT_SIGMA_M)


def velocity_sigma_mps(nac_v: int | None) -> float:
    """Per-axis horizontal sigma of an ADS-B ground velocity (1 kt steps included)."""
    r95 = NACV_BOUND_MPS.get(nac_v if nac_v is not None else 0, UNKNOWN_VELOCITY_R95_MPS)
    return math.hypot(r95 / 1.96, 0.15)
