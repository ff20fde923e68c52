# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Mode S CRC-24 (generator 0xFFF409): parity, syndrome and syndrome-table error correction.

The parity field of a reply is the CRC of the preceding bits; for DF11/17/18 it is sent
as is (the syndrome of a good reply is 0, or the interrogator id for DF11), for
address/parity formats it is XOR'd with the address (the syndrome is the address).
Errors are corrected by looking the syndrome up in a table of the syndromes of every
1-bit (and, optionally, 2-bit) error pattern. The DF field (first 5 bits) is never
corrected: it decides what the rest of the reply means.
"""

import numpy as np

include "crc_core.pxi"


def _as_bytes(msg):
    return np.ascontiguousarray(np.frombuffer(bytes(msg), dtype=np.uint8)
                                if isinstance(msg, (bytes, bytearray)) else msg, dtype=np.uint8)


def crc24(msg, int nbits) -> int:
    """Parity the transmitter appends: CRC-24 of the first nbits-24 bits of msg."""
    cdef const uint8_t[::1] m = _as_bytes(msg)
    if nbits not in (56, 112) or m.shape[0] < (nbits >> 3) - 3:
        raise ValueError("nbits must be 56 or 112 and msg long enough")
    return crc24_c(&m[0], (nbits >> 3) - 3)


def syndrome(msg, int nbits) -> int:
    """CRC of the data XOR the parity field: 0 for a good DF11/17/18, the address for AP formats."""
    cdef const uint8_t[::1] m = _as_bytes(msg)
    if nbits not in (56, 112) or m.shape[0] < (nbits >> 3):
        raise ValueError("nbits must be 56 or 112 and msg long enough")
    return syndrome_c(&m[0], nbits)


def fix_errors(msg, int nbits, int max_bits=1):
    """Correct up to max_bits flipped bits; return (corrected bytes, n_fixed) or (msg, -1)."""
    buf = bytearray(bytes(msg)[: nbits >> 3])
    cdef uint8_t[::1] m = np.frombuffer(buf, dtype=np.uint8)
    cdef int n = fix_errors_c(&m[0], nbits, syndrome_c(&m[0], nbits), max_bits)
    return bytes(buf), n
