# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Mode S CRC-24 (generator 0xFFF409): parity, syndrome and syndrome-table error correction.

The parity field of a reply is the CRC of the preceding bits; for DF11/17/18 it is sent
as is (the syndrome of a good reply is 0, or the interrogator id for DF11), for
address/parity formats it is XOR'd with the address (the syndrome is the address).
Errors are corrected by looking the syndrome up in a table of the syndromes of every
1-bit (and, optionally, 2-bit) error pattern. The DF field (first 5 bits) is never
corrected: it decides what the rest of the reply means.

The C-level functions (``crc24_c``, ``syndrome_c``, ``fix_errors_c``) are declared in
cext/sensord/_crc.pxd (the path Cython ties to the module sensord._crc) for the
demodulator's hot loop.
"""

from libc.stdint cimport int8_t

import numpy as np

DEF POLY = 0xFFF409
DEF HASH_BITS = 15
DEF HASH_SIZE = 1 << HASH_BITS
DEF HASH_MASK = HASH_SIZE - 1
DEF FIRST_FIXABLE_BIT = 5

cdef uint32_t CRC_TABLE[256]
# open-addressing table: syndrome -> (bit a, bit b) of a 112-bit reply; b = -1 for 1-bit errors,
# a = -2 for a syndrome shared by two patterns (ambiguous: never corrected)
cdef uint32_t FIX_KEY[HASH_SIZE]
cdef int8_t FIX_A[HASH_SIZE]
cdef int8_t FIX_B[HASH_SIZE]
cdef uint8_t FIX_NBITS[HASH_SIZE]


cdef uint32_t crc24_c(const uint8_t* msg, int nbytes) noexcept nogil:
    """CRC-24 of nbytes bytes (no initial value, MSB first)."""
    cdef uint32_t crc = 0
    cdef int i
    for i in range(nbytes):
        crc = ((crc << 8) ^ CRC_TABLE[((crc >> 16) ^ msg[i]) & 0xFF]) & 0xFFFFFF
    return crc


cdef uint32_t syndrome_c(const uint8_t* msg, int nbits) noexcept nogil:
    """CRC of the data bits XOR the parity field: 0 for an error-free DF11(IID 0)/17/18."""
    cdef int n = nbits >> 3
    cdef uint32_t parity = (<uint32_t>msg[n - 3] << 16) | (<uint32_t>msg[n - 2] << 8) | msg[n - 1]
    return crc24_c(msg, n - 3) ^ parity


cdef inline uint32_t _hash(uint32_t syndrome) noexcept nogil:
    return ((syndrome * 2654435761u) >> (32 - HASH_BITS)) & HASH_MASK


cdef void _insert(uint32_t syndrome, int a, int b, int nbits) noexcept nogil:
    cdef uint32_t h = _hash(syndrome)
    while FIX_KEY[h] != 0:
        if FIX_KEY[h] == (syndrome | 0x1000000):
            if FIX_NBITS[h] > nbits:  # keep the pattern with fewer bits
                FIX_A[h] = a
                FIX_B[h] = b
                FIX_NBITS[h] = nbits
            elif FIX_NBITS[h] == nbits:
                FIX_A[h] = -2
            return
        h = (h + 1) & HASH_MASK
    FIX_KEY[h] = syndrome | 0x1000000
    FIX_A[h] = a
    FIX_B[h] = b
    FIX_NBITS[h] = nbits


cdef void _init_tables():
    cdef uint32_t c
    cdef int i, k, a, b
    cdef uint32_t bit_syn[112]
    cdef uint8_t msg[14]
    for i in range(256):
        c = <uint32_t>i << 16
        for k in range(8):
            c = ((c << 1) ^ POLY) if (c & 0x800000) else (c << 1)
        CRC_TABLE[i] = c & 0xFFFFFF
    for i in range(HASH_SIZE):
        FIX_KEY[i] = 0
    for a in range(112):
        for k in range(14):
            msg[k] = 0
        msg[a >> 3] = 0x80 >> (a & 7)
        bit_syn[a] = syndrome_c(msg, 112)
    for a in range(FIRST_FIXABLE_BIT, 112):
        _insert(bit_syn[a], a, -1, 1)
    for a in range(FIRST_FIXABLE_BIT, 112):
        for b in range(a + 1, 112):
            _insert(bit_syn[a] ^ bit_syn[b], a, b, 2)


_init_tables()


cdef int fix_errors_c(uint8_t* msg, int nbits, uint32_t syndrome, int max_bits) noexcept nogil:
    """Flip the bits whose error pattern has this syndrome; return how many, or -1.

    A 56-bit reply's bit i has the syndrome of bit i + 56 of a 112-bit reply (the CRC is
    linear and leading zeros do not change it), so one table serves both lengths.
    """
    cdef uint32_t h
    cdef int a, b, shift
    if syndrome == 0 or max_bits <= 0:
        return 0 if syndrome == 0 else -1
    h = _hash(syndrome)
    while FIX_KEY[h] != 0:
        if FIX_KEY[h] == (syndrome | 0x1000000):
            if FIX_A[h] < 0 or FIX_NBITS[h] > max_bits:
                return -1
            shift = 112 - nbits
            a = FIX_A[h] - shift
            b = FIX_B[h] - shift if FIX_B[h] >= 0 else -1
            if a < FIRST_FIXABLE_BIT or (FIX_B[h] >= 0 and b < FIRST_FIXABLE_BIT):
                return -1
            msg[a >> 3] ^= 0x80 >> (a & 7)
            if b >= 0:
                msg[b >> 3] ^= 0x80 >> (b & 7)
            return FIX_NBITS[h]
        h = (h + 1) & HASH_MASK
    return -1


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
