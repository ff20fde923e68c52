# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Mode S demodulator core: magnitudes, preamble search, phase-robust bit slicing, CRC checks.

Rate-agnostic: the pulse timing is precomputed, for NPHASE sub-sample phases, into small
weight kernels over the magnitude samples (a sample stands for the interval of half a
sample either side of it), so 2.0 and 2.4 MS/s run the same loop. For each candidate
position the plausible phases are demodulated and the best-scoring reply is kept.
All loops run without the GIL and without Python objects.
"""

from libc.math cimport ceil, erf, exp, fabs, fabsf, floor, fmin, log10, sqrt, sqrtf
from libc.stdint cimport int8_t, int16_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

cimport numpy as cnp
import numpy as np

from sensord._crc cimport crc24_c, fix_errors_c, syndrome_c

cnp.import_array()

DEF MAXWIN = 6
DEF PRE_US = 8
DEF QTAPS = 8  # quiet samples the vectorised prefilter tests (all up to 2.4 MS/s, a subset above)
DEF PRE_MAX = 32  # preamble samples at up to 3.0 MS/s: ceil(8 * 3) + 2
DEF ICAO_BITS = 13
DEF ICAO_SIZE = 1 << ICAO_BITS
DEF ICAO_MASK = ICAO_SIZE - 1
DEF ICAO_PROBE = 32
DEF ADDR_PENDING = 1
DEF ADDR_CONFIRMED = 2

cdef extern from *:
    """
    #include <stddef.h>
    /* The stage-0 prefilter of DemodCore._pulse_flags: restrict-qualified so the compiler
       vectorises it (the flag bytes could otherwise alias the magnitudes), and built for
       AVX2 too on x86-64 (chosen at load time where the CPU has it; other processors,
       such as a Raspberry Pi's, build the plain version). */
    #if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
    __attribute__((target_clones("avx2", "default")))
    #endif
    static void pulse_flags_c(const uint16_t* __restrict m, int n, const int* pulse,
                              const int* quiet, int t1, int t2, int use_quiet,
                              uint8_t* __restrict flag) {
        const uint16_t* __restrict m0 = m + pulse[0];
        const uint16_t* __restrict m1 = m + pulse[1];
        const uint16_t* __restrict m2 = m + pulse[2];
        const uint16_t* __restrict m3 = m + pulse[3];
        const uint16_t *q0 = m + quiet[0], *q1 = m + quiet[1], *q2 = m + quiet[2],
                       *q3 = m + quiet[3], *q4 = m + quiet[4], *q5 = m + quiet[5],
                       *q6 = m + quiet[6], *q7 = m + quiet[7];
        /* halved magnitudes fit int16, whose max/min/compare SSE2 has: x >= t implies
           x/2 >= t/2 (rounded down), so the flags keep every start the exact test passes */
        const int16_t h1 = (int16_t)((t1 > 0x1FFFF ? 0x1FFFF : t1) >> 1);
        const int16_t h2 = (int16_t)((t2 > 0x1FFFF ? 0x1FFFF : t2) >> 1);
        const int16_t qmask = use_quiet ? -1 : 0;
#define MX(x, y) ((x) > (y) ? (x) : (y))
#define MN(x, y) ((x) < (y) ? (x) : (y))
#define H(p) ((int16_t)((p)[i] >> 1))
        for (size_t i = 0; i < (size_t)n; i++) {
            int16_t a = (int16_t)(MX(m0[i], m0[i + 1]) >> 1);
            int16_t b = (int16_t)(MX(m1[i], m1[i + 1]) >> 1);
            int16_t c = (int16_t)(MX(m2[i], m2[i + 1]) >> 1);
            int16_t d = (int16_t)(MX(m3[i], m3[i + 1]) >> 1);
            int16_t lo3 = MN(MN(b, c), d), q;
            q = MX(MX(MX(H(q0), H(q1)), MX(H(q2), H(q3))), MX(MX(H(q4), H(q5)), MX(H(q6), H(q7))));
            q &= qmask;
            /* passes as a four-pulse preamble (a >= q too) or a three-pulse one (lo3 >= t2) */
            flag[i] = (lo3 >= h1) & (lo3 >= q) & (((a >= h1) & (a >= q)) | (lo3 >= h2));
        }
#undef MX
#undef MN
#undef H
    }
    """
    void pulse_flags_c(const uint16_t* m, int n, const int* pulse, const int* quiet, int t1,
                       int t2, int use_quiet, uint8_t* flag) noexcept nogil


cdef uint16_t LUT_U8[65536]
# downlink formats the core demodulates (others, e.g. Comm-D, are skipped at the first 5 bits)
cdef bint ACCEPTED_DF[32]
for _df in range(32):
    ACCEPTED_DF[_df] = _df in (0, 4, 5, 11, 16, 17, 18, 20, 21)
cdef uint16_t LUT_S8[65536]
DEF CHASE_MAX_K = 16
DEF FIRST_FLIPPABLE_BIT = 5  # the DF field decides the length: never flipped
# syndrome of a single bit error at bit i of a 112-bit reply (bit i of a 56-bit one: i + 56)
cdef uint32_t BIT_SYN[112]


cdef void _init_bit_syndromes():
    cdef uint8_t one[14]
    cdef int a
    for a in range(112):
        memset(one, 0, 14)
        one[a >> 3] = 0x80 >> (a & 7)
        BIT_SYN[a] = syndrome_c(one, 112)


_init_bit_syndromes()

# The pulse edge model of the arrival fit: a chip boundary seen through a Gaussian
# low-pass of PULSE_SIGMA_US (about the RTL2832's 1.6 MHz), tabulated over +-PHI_RANGE sigmas.
DEF PULSE_SIGMA_US = 0.12
DEF TOA_BITS = 32  # arrival estimates use the preamble and the reply's first bits (DF, CA, AA)
DEF PHI_N = 1024
DEF PHI_RANGE = 4.0
cdef double PHI_CDF[PHI_N + 1]
cdef double PHI_PDF[PHI_N + 1]


cdef void _init_phi():
    cdef int k
    cdef double x
    for k in range(PHI_N + 1):
        x = -PHI_RANGE + 2.0 * PHI_RANGE * k / PHI_N
        PHI_CDF[k] = 0.5 * (1.0 + erf(x / sqrt(2.0)))
        PHI_PDF[k] = exp(-0.5 * x * x) / sqrt(2.0 * 3.141592653589793)


_init_phi()


cdef inline double _phi_cdf(double x, double* pdf) noexcept nogil:
    """Standard normal CDF at x (and its density into pdf), from the table."""
    cdef double u = (x + PHI_RANGE) * (PHI_N / (2.0 * PHI_RANGE))
    cdef int k
    if u <= 0.0:
        pdf[0] = 0.0
        return 0.0
    if u >= PHI_N:
        pdf[0] = 0.0
        return 1.0
    k = <int>u
    u -= k
    pdf[0] = PHI_PDF[k] + u * (PHI_PDF[k + 1] - PHI_PDF[k])
    return PHI_CDF[k] + u * (PHI_CDF[k + 1] - PHI_CDF[k])


cdef int _weakest_bits(const float* soft, int nbits, int k, float limit, int* idx) noexcept nogil:
    """The k bits of [FIRST_FLIPPABLE_BIT, nbits) with the smallest |soft|, weakest first
    (ties in bit order), of those with |soft| <= limit."""
    cdef int n, b, i, m = 0, c, r, tries = 0
    cdef float v, hi = limit, lo = 0.0
    cdef float cv[112]
    cdef int cb[112]
    # branch-free first pass: the bits under the limit, in order
    for b in range(FIRST_FLIPPABLE_BIT, nbits):
        v = fabsf(soft[b])
        cv[m] = v
        cb[m] = b
        m += v <= limit
    # a noisy reply leaves dozens: while at least k of them lie under a lower limit (first
    # guessed for evenly spread values, then bisected), keep only those, in order; the k
    # weakest are among them
    limit = <float>(hi * (1.5 * k) / m) if m > 0 else hi
    while m > 2 * k and tries < 4:
        tries += 1
        n = 0
        for c in range(m):
            n += cv[c] <= limit
        if n < k:
            lo = limit
        else:
            n = 0
            for c in range(m):
                v = cv[c]
                cv[n] = v
                cb[n] = cb[c]
                n += v <= limit
            m = n
            hi = limit
        limit = <float>(0.5 * (lo + hi))
    # each bit's place is the number of bits before it in (|soft|, bit) order: no branches
    for c in range(m):
        v = cv[c]
        r = 0
        for i in range(c):
            r += cv[i] <= v
        for i in range(c + 1, m):
            r += cv[i] < v
        if r < k:
            idx[r] = cb[c]
    return m if m < k else k


cdef void _init_luts():
    cdef int idx
    cdef double fi, fq, m
    for idx in range(65536):
        fi = ((idx & 0xFF) - 127.4) / 128.0
        fq = ((idx >> 8) - 127.4) / 128.0
        m = sqrt(fi * fi + fq * fq) * 65535.0 + 0.5
        LUT_U8[idx] = <uint16_t>(m if m < 65535.0 else 65535.0)
        fi = (<int8_t>(idx & 0xFF)) / 128.0
        fq = (<int8_t>(idx >> 8)) / 128.0
        m = sqrt(fi * fi + fq * fq) * 65535.0 + 0.5
        LUT_S8[idx] = <uint16_t>(m if m < 65535.0 else 65535.0)


_init_luts()


def magnitude(samples, str fmt, uint16_t[::1] out):
    """Magnitudes (0..65535 = full scale) of interleaved I/Q samples into out.

    fmt is cu8, cs8, cs16 or cf32; out must hold len(samples) // 2 values.
    """
    cdef Py_ssize_t n = samples.shape[0] // 2
    cdef Py_ssize_t k
    cdef float fi, fq, mf  # single precision: 24 bits of mantissa cover the 16-bit output
    cdef const uint16_t[::1] pairs
    cdef const int16_t[::1] s16
    cdef const float[::1] f32
    cdef const uint16_t* lut
    if out.shape[0] < n:
        raise ValueError("output buffer too small")
    if n == 0:
        return
    if fmt == "cu8" or fmt == "cs8":
        pairs = np.ascontiguousarray(samples[: 2 * n]).view(np.uint16)
        lut = &LUT_U8[0] if fmt == "cu8" else &LUT_S8[0]  # chosen with the GIL: fmt is a Python str
        with nogil:
            for k in range(n):
                out[k] = lut[pairs[k]]
    elif fmt == "cs16":
        s16 = np.ascontiguousarray(samples[: 2 * n], dtype=np.int16)
        with nogil:
            for k in range(n):
                fi = s16[2 * k]
                fq = s16[2 * k + 1]
                mf = sqrtf(fi * fi + fq * fq) * <float>(65535.0 / 32768.0) + 0.5
                out[k] = <uint16_t>(mf if mf < 65535.0 else 65535.0)
    elif fmt == "cf32":
        f32 = np.ascontiguousarray(samples[: 2 * n], dtype=np.float32)
        with nogil:
            for k in range(n):
                fi = f32[2 * k]
                fq = f32[2 * k + 1]
                mf = sqrtf(fi * fi + fq * fq) * 65535.0 + 0.5
                out[k] = <uint16_t>(mf if mf < 65535.0 else 65535.0)
    else:
        raise ValueError(f"unknown sample format {fmt!r}")


cdef int _kth_u16(const uint16_t* x, Py_ssize_t n, Py_ssize_t r, const Py_ssize_t* hi_count) noexcept nogil:
    """The r-th smallest (from 0) of x[:n], given the histogram of its high bytes."""
    cdef Py_ssize_t lo_count[256]
    cdef Py_ssize_t i
    cdef int b = 0, top
    while r >= hi_count[b]:
        r -= hi_count[b]
        b += 1
    memset(lo_count, 0, sizeof(lo_count))
    for i in range(n):
        top = x[i] >> 8
        if top == b:
            lo_count[x[i] & 0xFF] += 1
    top = 0
    while r >= lo_count[top]:
        r -= lo_count[top]
        top += 1
    return (b << 8) | top


def median_u16(const uint16_t[::1] x):
    """``float(np.median(x))`` of a non-empty uint16 array, by two byte histograms."""
    cdef Py_ssize_t n = x.shape[0], i
    cdef Py_ssize_t hi_count[256]
    cdef int a, b
    if n == 0:
        raise ValueError("median of an empty array")
    with nogil:
        memset(hi_count, 0, sizeof(hi_count))
        for i in range(n):
            hi_count[x[i] >> 8] += 1
        b = _kth_u16(&x[0], n, n // 2, hi_count)
        a = b if n % 2 else _kth_u16(&x[0], n, n // 2 - 1, hi_count)
    return (a + b) / 2.0


cdef inline int _nbits_of(int df) noexcept nogil:
    return 112 if df >= 16 else 56


cdef class DemodCore:
    """The stateful demodulator: kernels for one sample rate, the ICAO filter, options.

    ``process`` searches a magnitude buffer and writes accepted replies into the output
    arrays. State carried between calls: the ICAO table (address -> last seen sample and
    whether it is confirmed). The caller owns overlap and time bookkeeping.
    """

    cdef readonly double rate_hz
    cdef readonly double sps
    cdef readonly int nphase
    cdef readonly int win
    cdef readonly int frame_len
    cdef readonly int pre_len
    cdef public int fix_bits
    cdef public int64_t icao_ttl_samples
    cdef public double thresh_pulse      # pulse magnitude vs the noise floor's mean magnitude
    cdef public double thresh_quiet      # pulse magnitude vs the preamble's quiet samples
    cdef public int max_phases           # phases demodulated per candidate, best preamble fit first
    cdef public double min_clarity       # mean |soft bit| of the DF bits vs the weakest preamble pulse
    cdef public double edge_max_residual  # edge slicer: DF bits' mean squared residual (amplitude 1)
    cdef public int chase_bits           # soft correction: flips tried among this many weakest bits
    cdef public int chase_flips          # at most this many, DF11/17/18 from a known address
    cdef public int chase_flips_ap       # at most this many, address/parity to a confirmed address
    cdef public double chase_max_soft    # a flipped bit's |soft| at most this times the mean |soft|
    cdef public bint toa_fit             # refine arrivals by the envelope model (2.0 MS/s)
    cdef public bint partial_preambles   # accept a preamble missing its first pulse (clean replies)
    cdef int a_pulse[4]
    cdef int edge_pre[4]
    cdef bint edge_slicer
    cdef int n_quiet
    cdef int quiet_idx[32]
    cdef int[:, ::1] bit_off
    cdef float[:, :, ::1] bit_w1
    cdef float[:, :, ::1] bit_w2
    cdef float[:, :, ::1] bit_c        # w1 - w2: the bit's soft value in one dot product
    cdef float[:, ::1] pre_w          # mean pulse minus mean quiet magnitude, one kernel per phase
    cdef float pre_wt[PRE_MAX * 8]    # pre_w transposed, 8 phases a sample (zero-padded)
    cdef uint32_t[::1] icao_addr
    cdef int64_t[::1] icao_last
    cdef uint8_t[::1] icao_state
    cdef uint64_t seen_bits[1024]      # a bit per hash of every address ever confirmed: a
                                      # clear bit rules an address out without a table probe
    # counters
    cdef public int64_t n_candidates
    cdef public int64_t n_phase_trials

    def __init__(self, double rate_hz, int fix_bits=1, double icao_ttl_s=60.0, int nphase=6,
                 double thresh_pulse=2.0, double thresh_quiet=1.0,
                 int max_phases=3, double min_clarity=0.2,
                 double edge_max_residual=0.1, int chase_bits=12, int chase_flips=3,
                 int chase_flips_ap=2, double chase_max_soft=0.5):
        if rate_hz < 1.9e6 or rate_hz > 3.1e6:
            raise ValueError("sample rate must be between 2.0 and 3.0 MS/s")
        self.rate_hz = rate_hz
        self.sps = rate_hz / 1e6
        self.nphase = nphase
        if not 1 <= self.nphase <= 16:
            raise ValueError("nphase must be 1 to 16")
        self.fix_bits = fix_bits
        self.icao_ttl_samples = <int64_t>(icao_ttl_s * rate_hz)
        self.thresh_pulse = thresh_pulse
        self.thresh_quiet = thresh_quiet
        self.max_phases = max_phases
        self.min_clarity = min_clarity
        self.edge_max_residual = edge_max_residual
        if not 0 <= chase_bits <= CHASE_MAX_K or not 0 <= chase_flips <= 3 or not 0 <= chase_flips_ap <= 3:
            raise ValueError(f"chase_bits must be 0 to {CHASE_MAX_K}, chase flips 0 to 3")
        self.chase_bits = chase_bits
        self.chase_flips = chase_flips
        self.chase_flips_ap = chase_flips_ap
        self.chase_max_soft = chase_max_soft
        self.toa_fit = abs(self.sps - 2.0) < 0.1
        self.partial_preambles = True
        self.win = <int>ceil(self.sps) + 1  # samples a bit's two halves can touch
        if self.win > MAXWIN:
            raise ValueError("sample rate too high for the kernel window")
        self.pre_len = <int>ceil(PRE_US * self.sps) + 2
        self.frame_len = <int>ceil((PRE_US + 112) * self.sps) + self.win + 2
        self._build_kernels()
        self.icao_addr = np.zeros(ICAO_SIZE, dtype=np.uint32)
        self.icao_last = np.zeros(ICAO_SIZE, dtype=np.int64)
        self.icao_state = np.zeros(ICAO_SIZE, dtype=np.uint8)
        memset(self.seen_bits, 0, sizeof(self.seen_bits))
        self.n_candidates = 0
        self.n_phase_trials = 0

    def _build_kernels(self):
        sps = self.sps
        hb = sps / 2.0

        def box_weights(t0, t1):
            """Weights of samples i over [t0, t1): overlap with [i - 0.5, i + 0.5)."""
            i0 = int(np.floor(t0 + 0.5))
            i1 = int(np.ceil(t1 - 0.5))
            return i0, [max(0.0, min(t1, i + 0.5) - max(t0, i - 0.5)) for i in range(i0, i1 + 1)]

        off = np.zeros((self.nphase, 112), dtype=np.int32)
        w1 = np.zeros((self.nphase, 112, self.win), dtype=np.float32)
        w2 = np.zeros((self.nphase, 112, self.win), dtype=np.float32)
        pon = np.zeros((self.nphase, self.pre_len), dtype=np.float32)
        poff = np.zeros((self.nphase, self.pre_len), dtype=np.float32)
        for p in range(self.nphase):
            s = p / self.nphase
            for k in range(112):
                t0 = s + (PRE_US + k) * sps
                base = int(np.floor(t0 + 0.5))
                off[p, k] = base
                for (t_a, t_b, w) in ((t0, t0 + hb, w1), (t0 + hb, t0 + sps, w2)):
                    i0, ws = box_weights(t_a, t_b)
                    for m, wv in enumerate(ws):
                        if wv > 0:
                            w[p, k, i0 - base + m] = wv / hb
            for t_us in (0.0, 1.0, 3.5, 4.5):
                i0, ws = box_weights(s + t_us * sps, s + t_us * sps + hb)
                for m, wv in enumerate(ws):
                    pon[p, i0 + m] += wv / (4 * hb)
            quiet = [(1.75, 3.25), (5.25, 7.75)]
            qlen = sum(b - a for a, b in quiet) * sps
            for a, b in quiet:
                i0, ws = box_weights(s + a * sps, s + b * sps)
                for m, wv in enumerate(ws):
                    poff[p, i0 + m] += wv / qlen
        self.bit_off = off
        self.bit_w1 = w1
        self.bit_w2 = w2
        self.bit_c = w1 - w2
        self.pre_w = pon - poff
        memset(self.pre_wt, 0, sizeof(self.pre_wt))
        if self.nphase <= 8:
            for p in range(self.nphase):
                for i in range(self.pre_len):
                    self.pre_wt[8 * i + p] = self.pre_w[p, i]
        # edge-sampled 2.0 MS/s: the preamble pulses start on samples 0, 2, 7, 9
        self.edge_slicer = abs(sps - 2.0) < 1e-9
        for k, i in enumerate((0, 2, 7, 9)):
            self.edge_pre[k] = i
        # stage 1: for a start in [j, j+1) each pulse centre lies between samples a and a+1
        for k, t_us in enumerate((0.0, 1.0, 3.5, 4.5)):
            self.a_pulse[k] = int(np.floor(t_us * sps + hb / 2))
        quiet_samples = [i for i in range(self.pre_len)
                         if (1.5 * sps + 1.5 <= i <= 3.5 * sps - 0.5) or (5.0 * sps + 1.5 <= i <= 8.0 * sps - 0.5)]
        self.n_quiet = len(quiet_samples)
        for k, i in enumerate(quiet_samples[:32]):
            self.quiet_idx[k] = i

    # ---- ICAO filter -------------------------------------------------------------
    cdef inline int _icao_find(self, uint32_t addr, int64_t now) noexcept nogil:
        """Slot of addr if present and not expired, else -1."""
        cdef uint32_t h = ((addr * 2654435761u) >> (32 - ICAO_BITS)) & ICAO_MASK
        cdef int k
        for k in range(ICAO_PROBE):
            if self.icao_state[h] == 0:
                return -1
            if self.icao_addr[h] == addr:
                if now - self.icao_last[h] <= self.icao_ttl_samples:
                    return h
                return -1
            h = (h + 1) & ICAO_MASK
        return -1

    cdef inline void _icao_mark(self, uint32_t addr, int64_t now, int state) noexcept nogil:
        """Record addr as seen now; state only rises (pending -> confirmed) unless expired."""
        cdef uint32_t h = ((addr * 2654435761u) >> (32 - ICAO_BITS)) & ICAO_MASK
        cdef int k
        cdef int64_t oldest_t = now
        cdef uint32_t oldest = h
        for k in range(ICAO_PROBE):
            if self.icao_state[h] == 0 or self.icao_addr[h] == addr:
                if (self.icao_state[h] != 0 and now - self.icao_last[h] <= self.icao_ttl_samples
                        and self.icao_state[h] > state):
                    state = self.icao_state[h]
                self.icao_addr[h] = addr
                self.icao_last[h] = now
                self.icao_state[h] = state
                self._note_seen(addr, state)
                return
            if self.icao_last[h] < oldest_t:
                oldest_t = self.icao_last[h]
                oldest = h
            h = (h + 1) & ICAO_MASK
        self.icao_addr[oldest] = addr
        self.icao_last[oldest] = now
        self.icao_state[oldest] = state
        self._note_seen(addr, state)

    cdef inline uint32_t _seen_hash(self, uint32_t addr) noexcept nogil:
        return (addr * 0x9E3779B1u) >> 16

    cdef inline void _note_seen(self, uint32_t addr, int state) noexcept nogil:
        cdef uint32_t b
        if state == ADDR_CONFIRMED:
            b = self._seen_hash(addr)
            self.seen_bits[b >> 6] |= (<uint64_t>1) << (b & 63)

    def icao_known(self, uint32_t addr, int64_t now_sample):
        """0 unknown/expired, 1 pending, 2 confirmed (for tests and stats)."""
        cdef int h = self._icao_find(addr, now_sample)
        return 0 if h < 0 else self.icao_state[h]

    def icao_add(self, uint32_t addr, int64_t now_sample, bint confirmed=True):
        """Mark an address verified from outside (e.g. another receiver's DF17)."""
        self._icao_mark(addr, now_sample, ADDR_CONFIRMED if confirmed else ADDR_PENDING)

    # ---- bit slicing and scoring ----------------------------------------------------
    cdef void _pulse_flags(self, const uint16_t* m, int n, int thr, uint8_t* flag) noexcept nogil:
        """flag[j] = 1 where a preamble at m[j] passes _preamble_lo's pulse tests (not the quiet one).

        The same tests as _preamble_lo's, on every start at once: a branch-free loop the
        compiler vectorises, so the scan below visits only the few starts that can pass.
        """
        cdef int t
        cdef int quiet[QTAPS]
        # the quiet test too (weakest pulse >= loudest quiet sample) where it is implied
        cdef int use_quiet = self.thresh_quiet >= 1.0 and self.n_quiet > 0
        for t in range(QTAPS):
            quiet[t] = self.quiet_idx[t if t < self.n_quiet else self.n_quiet - 1] if use_quiet else 0
        pulse_flags_c(m, n, self.a_pulse, quiet, thr,
                      2 * thr if self.partial_preambles else 0x20000, use_quiet, flag)

    cdef inline int _preamble_lo(self, const uint16_t* m, int thr, bint* partial) noexcept nogil:
        """Weakest of the four preamble pulses if it reaches thr and clears the quiet samples, else 0.

        A preamble whose first pulse is missing (cut, or hidden under another reply's tail)
        still passes if the other three reach twice thr; ``partial`` is then set and the
        caller accepts only replies that check without correction.
        """
        cdef int k
        cdef uint16_t lo, v, q = 0
        lo = m[self.a_pulse[0]] if m[self.a_pulse[0]] > m[self.a_pulse[0] + 1] else m[self.a_pulse[0] + 1]
        partial[0] = False
        if lo < thr:
            if not self.partial_preambles or (m[self.a_pulse[2]] < 2 * thr and m[self.a_pulse[2] + 1] < 2 * thr):
                return 0
            partial[0] = True
            thr = 2 * thr
            lo = 65535
        for k in range(1, 4):
            v = m[self.a_pulse[k]] if m[self.a_pulse[k]] > m[self.a_pulse[k] + 1] else m[self.a_pulse[k] + 1]
            if v < thr:
                return 0
            if v < lo:
                lo = v
        for k in range(self.n_quiet):
            if m[self.quiet_idx[k]] > q:
                q = m[self.quiet_idx[k]]
        if lo < q * self.thresh_quiet:
            return 0
        return lo

    cdef inline void _preamble_scores8(self, const uint16_t* m, double* scores) noexcept nogil:
        """_preamble_score of up to 8 phases at once (same summation order per phase)."""
        cdef float acc[8]
        cdef float x
        cdef const float* w
        cdef int i, p
        for p in range(8):
            acc[p] = 0.0
        for i in range(self.pre_len):
            x = m[i]
            w = &self.pre_wt[8 * i]
            for p in range(8):
                acc[p] += w[p] * x
        for p in range(8):
            scores[p] = acc[p]

    cdef inline double _preamble_score(self, const float* mf, int p) noexcept nogil:
        """Mean pulse magnitude minus mean quiet magnitude of the preamble at phase p."""
        cdef float score = 0.0
        cdef int i
        cdef const float* w = &self.pre_w[p, 0]
        for i in range(self.pre_len):
            score += w[i] * mf[i]
        return score

    cdef inline int _slice(self, const uint16_t* m, int p, int k0, int k1, uint8_t* msg,
                           float* soft, double* margin) noexcept nogil:
        """Decide bits k0..k1-1 at phase p into msg (bits must be clear); soft values into
        soft[k] (> 0 for a 1); add their |soft| to margin."""
        cdef int k, i, win = self.win
        cdef const int* off = &self.bit_off[p, 0]
        cdef const float* c = &self.bit_c[p, 0, 0]
        cdef const uint16_t* mk
        cdef const float* ck
        cdef float v, conf = 0.0
        cdef uint32_t acc = 0  # bits of the current byte, collected in a register
        for k in range(k0, k1):
            mk = m + off[k]
            ck = c + k * win
            # the common windows unrolled (same summation order as the loop)
            if win == 4:
                v = ck[0] * mk[0]
                v += ck[1] * mk[1]
                v += ck[2] * mk[2]
                v += ck[3] * mk[3]
            elif win == 3:
                v = ck[0] * mk[0]
                v += ck[1] * mk[1]
                v += ck[2] * mk[2]
            else:
                v = 0.0
                for i in range(win):
                    v += ck[i] * mk[i]
            # branch-free: the bits of a reply are coin flips to the branch predictor
            acc = (acc << 1) | (v > 0)
            soft[k] = v
            conf += fabsf(v)
            if (k & 7) == 7:
                msg[k >> 3] |= <uint8_t>acc
                acc = 0
        if k1 & 7:
            msg[k1 >> 3] |= <uint8_t>(acc << (8 - (k1 & 7)))
        margin[0] += conf
        return 0

    cdef double _slice_edges(self, const uint16_t* m, int nbits, uint8_t* msg,
                             float* soft) noexcept nogil:
        """2.0 MS/s replies sampled near the pulse edges: a two-state Viterbi over the bits.

        At 2 samples per bit a start near a sample boundary puts every sample near an
        edge, where it sees part of each neighbouring half-bit. With the start offset s
        (estimated from the preamble's edge pairs) and a sample standing for the interval
        of half a sample either side, bit k's samples are, in units of the pulse amplitude,
        (0.5 + s) * previous second half + (0.5 - s) * first half, and
        (0.5 + s) * first half + (0.5 - s) * second half.
        The first depends on the previous bit: the most likely bit sequence (least squares)
        is found over the trellis whose state is the previous bit. Returns that path's
        mean squared residual per sample (pulse amplitude 1), large for anything else.
        soft[k]: how much the residual grows if bit k alone is flipped (> 0 for a 1).
        """
        cdef int k, i, state
        cdef double amp = 0.0, skew, inv_amp, x0, x1, hi, lo, d00, d01, d10, d11, c0, c1
        cdef double cost0, cost1, n0, n1, t, best
        cdef double cost[2]
        cdef uint8_t back[112][2]
        for k in range(4):
            i = self.edge_pre[k]
            amp += m[i] + m[i + 1]
        skew = 0.0
        for k in range(4):
            i = self.edge_pre[k]
            skew += <double>m[i + 1] - m[i]
        memset(msg, 0, 14)
        if amp <= 0.0:
            return 1e300
        skew = skew / (2.0 * amp)  # start offset in samples, box model
        if skew > 0.3 or skew < -0.3:
            return 1e300  # not edge-sampled: leave it to the phase slicer
        inv_amp = 4.0 / amp
        hi = 0.5 + skew  # expected sample values (pulse amplitude 1): a half's own share
        lo = 0.5 - skew  # and its neighbour's
        cost0 = 1e300  # the preamble ends quiet: as if the previous bit were a 1
        cost1 = 0.0
        for k in range(nbits):
            x0 = m[16 + 2 * k] * inv_amp
            x1 = m[17 + 2 * k] * inv_amp
            # second sample of bit b: hi * b + lo * (1 - b)
            c0 = (x1 - lo) * (x1 - lo)
            c1 = (x1 - hi) * (x1 - hi)
            # first sample of bit b after bit prev: hi * (1 - prev) + lo * b
            d00 = x0 - hi
            d10 = x0
            d01 = x0 - hi - lo
            d11 = x0 - lo
            # branch-free survivor choice (ties keep the previous bit 0)
            n0 = cost0 + d00 * d00
            t = cost1 + d10 * d10
            back[k][0] = t < n0
            n0 = fmin(n0, t)
            n1 = cost0 + d01 * d01
            t = cost1 + d11 * d11
            back[k][1] = t < n1
            n1 = fmin(n1, t)
            cost0 = n0 + c0
            cost1 = n1 + c1
        cost[0] = cost0
        cost[1] = cost1
        state = 1 if cost[1] < cost[0] else 0
        best = cost[state] / (2 * nbits)
        for k in range(nbits - 1, -1, -1):
            if state:
                msg[k >> 3] |= 0x80 >> (k & 7)
            state = back[k][state]
        self._edge_soft(m, nbits, msg, inv_amp, hi, lo, soft)
        return best

    cdef void _edge_soft(self, const uint16_t* m, int nbits, const uint8_t* msg,
                         double inv_amp, double hi, double lo, float* soft) noexcept nogil:
        """Per-bit confidence of an edge-sliced reply: the cost of flipping that bit alone."""
        cdef int k, b, prev = 1, nxt
        cdef double x0, x1, x0n, keep, flip, e
        for k in range(nbits):
            b = (msg[k >> 3] >> (7 - (k & 7))) & 1
            x0 = m[16 + 2 * k] * inv_amp
            x1 = m[17 + 2 * k] * inv_amp
            keep = 0.0
            flip = 0.0
            e = x0 - (hi * (1 - prev) + lo * b)
            keep += e * e
            e = x0 - (hi * (1 - prev) + lo * (1 - b))
            flip += e * e
            e = x1 - (hi * b + lo * (1 - b))
            keep += e * e
            e = x1 - (hi * (1 - b) + lo * b)
            flip += e * e
            if k + 1 < nbits:
                nxt = (msg[(k + 1) >> 3] >> (7 - ((k + 1) & 7))) & 1
                x0n = m[18 + 2 * k] * inv_amp
                e = x0n - (hi * (1 - b) + lo * nxt)
                keep += e * e
                e = x0n - (hi * b + lo * nxt)
                flip += e * e
            soft[k] = <float>((flip - keep) if b else (keep - flip))
            prev = b

    cdef double _signal_power(self, const uint16_t* m, int p, int nbits, const uint8_t* msg) noexcept nogil:
        """Mean squared pulse magnitude over the reply's bits (full scale = 65535**2)."""
        cdef int k, i, win = self.win
        cdef const int* off = &self.bit_off[p, 0]
        cdef const float* w1 = &self.bit_w1[p, 0, 0]
        cdef const float* w2 = &self.bit_w2[p, 0, 0]
        cdef const float* w
        cdef const uint16_t* mk
        cdef double a, total = 0.0
        for k in range(nbits):
            mk = m + off[k]
            w = (w1 if msg[k >> 3] & (0x80 >> (k & 7)) else w2) + k * win
            a = 0.0
            for i in range(win):
                a += w[i] * mk[i]
            total += a * a
        return total / nbits

    cdef int _score(self, uint8_t* msg, int64_t now, int* nbits_out, uint32_t* addr_out,
                    int* fixed_out, const float* soft, double mean_soft) noexcept nogil:
        """Validate a sliced reply (correcting it in place); score > 0 if acceptable.

        soft: the bits' soft values (None-equivalent NULL for a hard slicer), mean_soft
        their mean magnitude: a DF11 whose interrogator id is made of weak bits is an
        IID-0 reply with errors in its last parity bits, corrected as such.
        """
        cdef int df = msg[0] >> 3
        cdef int nbits = _nbits_of(df)
        cdef uint32_t syn
        cdef int fixed = 0
        cdef uint32_t addr
        cdef int h, j, nweak = 0, nstrong = 0
        nbits_out[0] = nbits
        fixed_out[0] = 0
        if df == 17 or df == 18 or df == 11:
            syn = syndrome_c(msg, nbits)
            if df == 11 and syn != 0 and syn < 0x80:
                # interrogator id in the parity: valid for an address we already know
                addr = (<uint32_t>msg[1] << 16) | (<uint32_t>msg[2] << 8) | msg[3]
                addr_out[0] = addr
                if self._icao_find(addr, now) < 0:
                    return 0
                if soft != NULL and self.fix_bits > 0:
                    # syndrome bit j is the reply's bit nbits - 1 - j: an id of clear bits is
                    # real, one or two weak bits alone are errors in an IID-0 reply, and a
                    # mix of weak and clear bits is too likely noise
                    for j in range(7):
                        if syn & (1u << j):
                            if fabsf(soft[nbits - 1 - j]) > self.chase_max_soft * mean_soft:
                                nstrong += 1
                            else:
                                nweak += 1
                    if nweak == 0:
                        return 1000
                    if nstrong > 0 or nweak > 2:
                        return 0
                    for j in range(7):
                        if syn & (1u << j):
                            msg[(nbits - 1 - j) >> 3] ^= 0x80 >> ((nbits - 1 - j) & 7)
                    fixed_out[0] = nweak
                    return 1400 - 300 * nweak
                return 1000
            if syn != 0:
                fixed = fix_errors_c(msg, nbits, syn, self.fix_bits)
                if fixed <= 0:
                    return 0
            addr = (<uint32_t>msg[1] << 16) | (<uint32_t>msg[2] << 8) | msg[3]
            addr_out[0] = addr
            fixed_out[0] = fixed
            if fixed > 0:
                if df == 11 and self._icao_find(addr, now) < 0:
                    return 0  # a corrected all-call reply from nobody we know: too weak
                return 1400 - 300 * fixed
            return 2000 if df != 11 else 1600
        if df == 0 or df == 4 or df == 5 or df == 16 or df == 20 or df == 21:
            addr = syndrome_c(msg, nbits)
            addr_out[0] = addr
            h = self._icao_find(addr, now)
            if h >= 0 and self.icao_state[h] == ADDR_CONFIRMED:
                return 1000
            return 0
        return 0

    cdef inline bint _chase_ok(self, uint32_t syn, bint ap, int64_t now) noexcept nogil:
        cdef int h
        cdef uint32_t b
        if not ap:
            return syn == 0
        b = self._seen_hash(syn)
        if not (self.seen_bits[b >> 6] >> (b & 63)) & 1:
            return False
        h = self._icao_find(syn, now)
        return h >= 0 and self.icao_state[h] == ADDR_CONFIRMED

    cdef int _chase_table(self, const uint8_t* msg, int nbits, const float* soft, float weak,
                          const int* idx, int n, int maxf, int* best) noexcept nogil:
        """DF11/17/18 Chase from the CRC's error table: the cheapest set of at most maxf weak
        bits (|soft| <= weak, one of the n weakest) whose flips clear the syndrome.

        One and two flips are one table look-up; three are one per weak first bit. Returns
        the number of bits (0: none) and writes them into best.
        """
        cdef uint8_t tmp[14]
        cdef uint32_t syn0 = syndrome_c(msg, nbits), syn
        cdef int a, k, i, nb, found = 0, bit
        cdef int bits[3]
        cdef float cost, best_cost = 1e30
        for a in range(-1, n if maxf >= 3 else 0):
            memcpy(tmp, msg, 14)
            syn = syn0
            if a >= 0:
                tmp[idx[a] >> 3] ^= 0x80 >> (idx[a] & 7)
                syn ^= BIT_SYN[idx[a] + 112 - nbits]
            if fix_errors_c(tmp, nbits, syn, 2) <= 0:
                continue
            # the flipped bits: where tmp and msg differ
            nb = 0
            cost = 0.0
            for k in range(nbits >> 3):
                if tmp[k] != msg[k]:
                    for i in range(8):
                        if (tmp[k] ^ msg[k]) & (0x80 >> i):
                            bit = 8 * k + i
                            if nb == 3 or fabsf(soft[bit]) > weak:
                                nb = 4
                                break
                            bits[nb] = bit
                            nb += 1
                            cost += fabsf(soft[bit])
                if nb > 3:
                    break
            if nb > 3 or nb > maxf or cost >= best_cost:
                continue
            best_cost = cost
            found = nb
            for k in range(nb):
                best[k] = bits[k]
        return found

    cdef int _chase(self, uint8_t* msg, int nbits, const float* soft, double mean_soft,
                    int64_t now, uint32_t* addr_out, int* fixed_out) noexcept nogil:
        """Soft-decision correction (Chase): flip combinations of the least confident bits.

        A reply that fails its parity check is tried with up to ``chase_flips`` (DF11/17/18)
        or ``chase_flips_ap`` (address/parity) of its ``chase_bits`` weakest bits flipped,
        each no stronger than ``chase_max_soft`` times the mean |soft|; the cheapest
        combination (least total |soft|) that checks is kept. Only replies from addresses
        already heard are accepted this way (DF11/17/18: known; address/parity:
        confirmed), so the few combinations tried cannot invent aircraft. Returns the score
        (0: no combination) and corrects msg in place.
        """
        cdef int df = msg[0] >> 3
        cdef bint ap = not (df == 11 or df == 17 or df == 18)
        cdef int maxf = self.chase_flips_ap if ap else self.chase_flips
        cdef int idx[CHASE_MAX_K]
        cdef int n, a, d, shift = 112 - nbits, nflip = 0
        cdef int best[3]
        cdef int pick[3]
        cdef uint32_t syn_at[3]
        cdef float cost_at[3]
        cdef uint32_t syn, addr
        cdef float limit = <float>(self.chase_max_soft * mean_soft)
        cdef float cost, best_cost = 1e30
        if maxf <= 0 or self.chase_bits <= 0 or not ACCEPTED_DF[df] or nbits != _nbits_of(df):
            return 0
        if not ap and self._icao_find(((<uint32_t>msg[1] << 16) | (<uint32_t>msg[2] << 8) | msg[3]),
                                      now) < 0:
            # accepted only from a known address: an unknown one must change, so a flip
            # must fall on an address bit (8 to 31)
            for a in range(8, 32):
                if fabsf(soft[a]) <= limit:
                    break
            else:
                return 0
        n = _weakest_bits(soft, nbits, self.chase_bits, limit, idx)
        if n == 0:
            return 0
        if not ap:
            nflip = self._chase_table(msg, nbits, soft, fabsf(soft[idx[n - 1]]), idx, n, maxf, best)
            n = 0  # skip the search below
        # depth-first over combinations, weakest bits first: a branch stops as soon as its
        # cost reaches the cheapest combination found (the bits after it cost more)
        syn_at[0] = syndrome_c(msg, nbits)
        cost_at[0] = 0.0
        pick[0] = 0
        d = 0
        while d >= 0:
            if pick[d] >= n:
                d -= 1
                if d >= 0:
                    pick[d] += 1
                continue
            cost = cost_at[d] + fabsf(soft[idx[pick[d]]])
            if cost >= best_cost:
                d -= 1
                if d >= 0:
                    pick[d] += 1
                continue
            syn = syn_at[d] ^ BIT_SYN[idx[pick[d]] + shift]
            if self._chase_ok(syn, ap, now):
                best_cost = cost
                nflip = d + 1
                for a in range(nflip):
                    best[a] = idx[pick[a]]
            if d + 1 < maxf:
                syn_at[d + 1] = syn
                cost_at[d + 1] = cost
                pick[d + 1] = pick[d] + 1
                d += 1
            else:
                pick[d] += 1
        if nflip == 0:
            return 0
        for a in range(nflip):
            msg[best[a] >> 3] ^= 0x80 >> (best[a] & 7)
        fixed_out[0] = nflip
        if ap:
            addr_out[0] = syndrome_c(msg, nbits)
            return 1000 - 200 * nflip
        addr = (<uint32_t>msg[1] << 16) | (<uint32_t>msg[2] << 8) | msg[3]
        addr_out[0] = addr
        if self._icao_find(addr, now) < 0:
            for a in range(nflip):  # undo: a corrected reply from an address never heard
                msg[best[a] >> 3] ^= 0x80 >> (best[a] & 7)
            fixed_out[0] = 0
            return 0
        return 1400 - 300 * nflip

    cdef inline double _edge_balance(self, const uint16_t* m, double t0, int n_edges,
                                     const double* edge_t, const int8_t* edge_sign) noexcept nogil:
        """Magnitude at falling edges minus at rising edges, linearly interpolated, with the
        reply starting at t0 (samples from m): positive while t0 is early, zero on time."""
        cdef double acc = 0.0, t, fr
        cdef int k, i
        for k in range(n_edges):
            t = t0 + edge_t[k]
            i = <int>t  # t >= 0
            fr = t - i
            acc += edge_sign[k] * (m[i] + fr * (<double>m[i + 1] - m[i]))
        return acc

    cdef inline double _edge_balance_d(self, const uint16_t* m, double t0, int n_edges,
                                       const double* edge_t, const int8_t* edge_sign,
                                       double* slope, double* down, double* up) noexcept nogil:
        """_edge_balance at t0, its slope there, and how far t0 may move down or up before
        an edge crosses a sample (the balance is linear in between)."""
        cdef double acc = 0.0, sl = 0.0, t, fr, dn = 1.0, u = 1.0
        cdef int k, i
        cdef double d
        for k in range(n_edges):
            t = t0 + edge_t[k]
            i = <int>t  # t >= 0
            fr = t - i
            d = <double>m[i + 1] - m[i]
            acc += edge_sign[k] * (m[i] + fr * d)
            sl += edge_sign[k] * d
            if fr < dn:
                dn = fr
            if 1.0 - fr < u:
                u = 1.0 - fr
        slope[0] = sl
        down[0] = dn
        up[0] = u
        return acc

    cdef double _arrival(self, const uint16_t* m, double t0, int nbits,
                         const uint8_t* msg) noexcept nogil:
        """Sub-sample arrival of the reply's first pulse edge (samples from m), refined from t0.

        An early-late gate over every pulse edge of the preamble and of the first TOA_BITS
        decoded bits: the start where the interpolated magnitude at the falling edges
        balances that at the rising edges (true for any symmetric pulse shape). Found by
        regula falsi (Illinois) in a bracket of half a sample either side of t0; t0 itself
        if the balance has no root there.
        """
        cdef double edge_t[2 * (16 + 224) + 2]
        cdef int8_t edge_sign[2 * (16 + 224) + 2]
        cdef uint8_t chips[16 + 224 + 2]
        cdef int n_bits = nbits if nbits < TOA_BITS else TOA_BITS
        cdef int n_chips = 16 + 2 * n_bits, c, n_edges = 0, it, side = 0
        cdef double hb = self.sps / 2.0, lo, hi, mid, f_lo, f_hi, f_mid, slope, down, up, root
        memset(chips, 0, sizeof(chips))
        chips[0] = chips[2] = chips[7] = chips[9] = 1
        # and the bit after: whether the window's last pulse ends there
        for c in range(n_bits + 1 if n_bits < nbits else n_bits):
            chips[17 + 2 * c - ((msg[c >> 3] >> (7 - (c & 7))) & 1)] = 1
        for c in range(n_chips):
            if chips[c] and (c == 0 or not chips[c - 1]):
                edge_t[n_edges] = c * hb
                edge_sign[n_edges] = -1
                n_edges += 1
            if chips[c] and not chips[c + 1]:
                edge_t[n_edges] = (c + 1) * hb
                edge_sign[n_edges] = 1
                n_edges += 1
        lo = t0 - 0.5
        hi = t0 + 0.5
        if lo < 0.0:
            lo = 0.0
        f_lo = self._edge_balance(m, lo, n_edges, edge_t, edge_sign)
        f_hi = self._edge_balance(m, hi, n_edges, edge_t, edge_sign)
        if not (f_lo > 0.0 and f_hi < 0.0):
            return t0
        for it in range(10):
            mid = lo + (hi - lo) * f_lo / (f_lo - f_hi)
            if hi - lo < 1e-3:
                break
            f_mid = self._edge_balance_d(m, mid, n_edges, edge_t, edge_sign, &slope, &down, &up)
            if slope < 0.0:
                # the balance is linear around mid: its root, if it lies on that piece, is exact
                root = mid - f_mid / slope
                if mid - down <= root <= mid + up and lo <= root <= hi:
                    return root
            if f_mid > 0.0:
                lo = mid
                f_lo = f_mid
                if side == 1:
                    f_hi *= 0.5  # Illinois: keep the stale end from stalling the bracket
                side = 1
            elif f_mid < 0.0:
                hi = mid
                f_hi = f_mid
                if side == -1:
                    f_lo *= 0.5
                side = -1
            else:
                return mid
        return lo + (hi - lo) * f_lo / (f_lo - f_hi)

    cdef double _arrival_fit(self, const uint16_t* m, int m_len, double t0, int nbits,
                             const uint8_t* msg) noexcept nogil:
        """Arrival refined by least squares against the reply's modelled envelope.

        Magnitude i ~ floor + amplitude * T(i - t): T is the decoded chip sequence (preamble
        and bits) with each chip boundary seen through a Gaussian low-pass. Gauss-Newton
        steps from t0 solve for floor, amplitude and t together. Needed at 2.0 MS/s, where
        every edge falls on the same sample phase and the edge balance cannot average the
        interpolation's bias away.
        """
        cdef uint8_t chips[16 + 224 + 4]
        cdef int n_bits = nbits if nbits < TOA_BITS else TOA_BITS
        cdef int n_chips = 16 + 2 * n_bits, c, it, i, i0, i1, k
        cdef double hb = self.sps / 2.0, sig = PULSE_SIGMA_US * self.sps, t = t0
        cdef double x, tt, pd1, pd2, f1, f2, val, der, amp = 0.0, flo = 0.0, r
        cdef double s11, s12, s13, s22, s23, s33, b1, b2, b3, det, d, a_, b_
        cdef int sp, sc, sn
        memset(chips, 0, sizeof(chips))
        chips[1] = chips[3] = chips[8] = chips[10] = 1  # chip c + 1 holds chip c (c >= -1)
        # the bit after the window too: its first chip shapes the window's last samples
        for c in range(n_bits + 1 if n_bits < nbits else n_bits):
            chips[18 + 2 * c - ((msg[c >> 3] >> (7 - (c & 7))) & 1)] = 1
        for it in range(5):
            i0 = <int>floor(t - 3.0 * sig)
            i1 = <int>floor(t + n_chips * hb) if n_bits < nbits else <int>ceil(t + n_chips * hb + 3.0 * sig)
            if i0 < 0:
                i0 = 0
            if i1 > m_len - 1:
                i1 = m_len - 1
            s11 = s12 = s13 = s22 = s23 = s33 = b1 = b2 = b3 = 0.0
            for i in range(i0, i1 + 1):
                tt = i - t
                c = <int>floor(tt / hb)
                if c < -1 or c > n_chips:
                    val = 0.0
                    der = 0.0
                    if c == -2:  # just before the first chip
                        f2 = _phi_cdf((tt + hb) / sig, &pd2)
                        val = f2
                        der = pd2 / sig
                else:
                    sp = chips[c] if c >= 0 else 0
                    sc = chips[c + 1]
                    sn = chips[c + 2]
                    f1 = _phi_cdf((tt - c * hb) / sig, &pd1)
                    f2 = _phi_cdf((tt - (c + 1) * hb) / sig, &pd2)
                    val = sc + (sc - sp) * (f1 - 1.0) + (sn - sc) * f2
                    der = ((sc - sp) * pd1 + (sn - sc) * pd2) / sig
                # columns: floor, amplitude, time (d model / d t = -amp * der)
                x = m[i]
                d = -der
                s11 += 1.0
                s12 += val
                s13 += d
                s22 += val * val
                s23 += val * d
                s33 += d * d
                b1 += x
                b2 += x * val
                b3 += x * d
            # solve [s11 s12 s13; s12 s22 s23; s13 s23 s33] [flo, amp, amp*dt] = b (Cramer)
            # linearised around t: x ~ flo + amp*val + amp*dt*d; the residual's projection
            det = (s11 * (s22 * s33 - s23 * s23) - s12 * (s12 * s33 - s23 * s13)
                   + s13 * (s12 * s23 - s22 * s13))
            if fabs(det) < 1e-12:
                return t0
            flo = (b1 * (s22 * s33 - s23 * s23) - s12 * (b2 * s33 - s23 * b3)
                   + s13 * (b2 * s23 - s22 * b3)) / det
            amp = (s11 * (b2 * s33 - s23 * b3) - b1 * (s12 * s33 - s23 * s13)
                   + s13 * (s12 * b3 - b2 * s13)) / det
            r = (s11 * (s22 * b3 - b2 * s23) - s12 * (s12 * b3 - b2 * s13)
                 + b1 * (s12 * s23 - s22 * s13)) / det
            if amp <= 0.0:
                return t0
            d = r / amp
            if d > 0.25:
                d = 0.25
            elif d < -0.25:
                d = -0.25
            t += d
            if fabs(d) < 2e-3:
                break
        if fabs(t - t0) > 0.75:
            return t0
        return t

    def process(self, const uint16_t[::1] mag, int64_t base_sample, int start, int stop,
                double noise_mag, uint8_t[:, ::1] out_msg, int[::1] out_nbits,
                uint32_t[::1] out_addr, double[::1] out_pos, double[::1] out_toa,
                float[::1] out_power, uint8_t[::1] out_fixed, uint8_t[::1] out_confirmed):
        """Search preamble starts j in [start, stop) of mag; return (n_frames, next_start).

        mag must hold stop + frame_len samples. out_pos is the start on the phase grid
        (1/nphase sample), out_toa the sub-sample arrival of the first pulse's leading edge. next_start is where the search may
        resume in absolute samples (past the last accepted reply).
        """
        cdef int j = start, p, best_p, nb, best_nb, fixed, best_fixed, score, best_score, n_out = 0, k
        cdef int cap = out_nbits.shape[0]
        cdef uint32_t addr, best_addr
        # integer samples: v < thr exactly when v < ceil(thr)
        cdef int thr = <int>ceil(noise_mag * self.thresh_pulse)
        cdef double lo, margin, best_key, key
        cdef uint8_t msg[14]
        cdef uint8_t best_msg[14]
        cdef float soft_a[112]
        cdef float soft_b[112]
        cdef float* soft_cur = soft_a     # the phase being sliced
        cdef float* soft_chase = soft_b   # the clearest failed phase (Chase candidate)
        cdef float* soft_tmp
        cdef float* soft
        cdef uint8_t chase_msg[14]
        cdef int chase_p, chase_nb
        cdef double chase_margin
        cdef double pscores[16]
        cdef float pre_f[PRE_MAX]  # the preamble's magnitudes, converted once for all phases
        cdef int tried
        cdef bint partial
        cdef const uint16_t* m
        cdef int64_t now
        cdef int64_t next_abs = base_sample + start
        cdef int state_before, h
        cdef double toa
        cdef uint8_t* flag
        cdef uint64_t word
        if mag.shape[0] < stop + self.frame_len:
            raise ValueError("magnitude buffer shorter than stop + frame_len")
        if thr < 1:
            thr = 1
        if stop <= start:
            return 0, next_abs
        flag = <uint8_t*>malloc(stop - start + 8)
        if flag == NULL:
            raise MemoryError()
        with nogil:
            self._pulse_flags(&mag[start], stop - start, thr, flag)
            memset(flag + (stop - start), 1, 8)  # sentinels: the word skip stops at stop
            while j < stop and n_out < cap:
                # stage 0: starts whose four pulses fail the threshold, eight at a time
                if not flag[j - start]:
                    j += 1
                    memcpy(&word, flag + (j - start), 8)
                    while word == 0:
                        j += 8
                        memcpy(&word, flag + (j - start), 8)
                    continue
                m = &mag[j]
                # stage 1: cheap integer-sample test; most noise fails at the first compare
                lo = self._preamble_lo(m, thr, &partial)
                if lo <= 0.0:
                    j += 1
                    continue
                # stage 2: phases in order of preamble fit; stop at the first perfect reply
                self.n_candidates += 1
                now = base_sample + j
                best_score = 0
                best_key = -1e300
                best_p = -1
                chase_p = -1
                chase_margin = 0.0
                # phases in order of preamble fit; a phase whose DF we do not decode drops
                # out after 5 bits; stop at the first perfect reply
                if self.nphase <= 8:
                    self._preamble_scores8(m, pscores)
                else:
                    for k in range(self.pre_len):
                        pre_f[k] = m[k]
                    for p in range(self.nphase):
                        pscores[p] = self._preamble_score(pre_f, p)
                for tried in range(self.max_phases):
                    p = 0
                    for k in range(1, self.nphase):
                        if pscores[k] > pscores[p]:
                            p = k
                    if pscores[p] <= 0.0:
                        break
                    pscores[p] = -1.0
                    self.n_phase_trials += 1
                    memset(msg, 0, 14)
                    margin = 0.0
                    self._slice(m, p, 0, 5, msg, soft_cur, &margin)
                    # junk (Mode A/C, noise, a reply's tail) slices vaguely: a reply's first
                    # bits are as clear as its preamble pulses are strong
                    if not ACCEPTED_DF[msg[0] >> 3] or margin < self.min_clarity * 5 * lo:
                        continue
                    nb = _nbits_of(msg[0] >> 3)
                    self._slice(m, p, 5, nb, msg, soft_cur, &margin)
                    margin /= nb
                    score = self._score(msg, now, &nb, &addr, &fixed, soft_cur, margin)
                    if partial:
                        # a three-pulse preamble: only replies that check as sliced
                        if fixed != 0 or (score < 1600 and (score != 1000 or (msg[0] >> 3) == 11)):
                            continue
                    if score <= 0:
                        # keep the clearest failed phase for one soft-decision try below
                        if margin > chase_margin:
                            chase_margin = margin
                            chase_p = p
                            chase_nb = nb
                            memcpy(chase_msg, msg, 14)
                            soft_tmp = soft_chase
                            soft_chase = soft_cur
                            soft_cur = soft_tmp
                        continue
                    key = score * 1e6 + margin
                    if key > best_key:
                        best_key = key
                        best_score = score
                        best_p = p
                        best_nb = nb
                        best_addr = addr
                        best_fixed = fixed
                        memcpy(best_msg, msg, 14)
                    if score >= 2000:
                        break
                if best_p < 0 and chase_p >= 0:
                    score = self._chase(chase_msg, chase_nb, soft_chase, chase_margin, now,
                                        &addr, &fixed)
                    if score > 0:
                        best_score = score
                        best_p = chase_p
                        best_nb = chase_nb
                        best_addr = addr
                        best_fixed = fixed
                        memcpy(best_msg, chase_msg, 14)
                if best_p < 0 and self.edge_slicer and not partial:
                    soft = soft_cur
                    if (self._slice_edges(m, 5, msg, soft) <= self.edge_max_residual
                            and ACCEPTED_DF[msg[0] >> 3]):
                        nb = _nbits_of(msg[0] >> 3)
                        self._slice_edges(m, nb, msg, soft)
                        if not ACCEPTED_DF[msg[0] >> 3] or _nbits_of(msg[0] >> 3) != nb:
                            j += 1  # the whole reply's best path changed its format
                            continue
                        margin = 0.0
                        for k in range(nb):
                            margin += fabsf(soft[k])
                        margin /= nb
                        score = self._score(msg, now, &nb, &addr, &fixed, soft, margin)
                        if score <= 0:
                            score = self._chase(msg, nb, soft, margin, now, &addr, &fixed)
                        if score > 0:
                            best_score = score
                            best_p = 0
                            best_nb = nb
                            best_addr = addr
                            best_fixed = fixed
                            memcpy(best_msg, msg, 14)
                if best_p < 0:
                    j += 1
                    continue
                # accepted
                for k in range(14):
                    out_msg[n_out, k] = best_msg[k] if k < (best_nb >> 3) else 0
                out_nbits[n_out] = best_nb
                out_addr[n_out] = best_addr
                out_pos[n_out] = base_sample + j + (<double>best_p) / self.nphase
                toa = self._arrival(m, (<double>best_p) / self.nphase, best_nb, best_msg)
                if self.toa_fit:
                    toa = self._arrival_fit(m, mag.shape[0] - j, toa, best_nb, best_msg)
                out_toa[n_out] = base_sample + j + toa
                out_power[n_out] = self._signal_power(m, best_p, best_nb, best_msg)
                out_fixed[n_out] = best_fixed
                h = self._icao_find(best_addr, now)
                state_before = 0 if h < 0 else self.icao_state[h]
                out_confirmed[n_out] = state_before == ADDR_CONFIRMED
                k = best_msg[0] >> 3
                if k == 11 or k == 17 or k == 18:
                    if best_fixed == 0 and best_score >= 1600:
                        self._icao_mark(best_addr, now, ADDR_CONFIRMED)
                    elif best_score > 1000 or state_before > 0:
                        self._icao_mark(best_addr, now,
                                        ADDR_CONFIRMED if state_before > 0 else ADDR_PENDING)
                n_out += 1
                j += <int>((PRE_US + best_nb) * self.sps) - 1
                next_abs = base_sample + j
        free(flag)
        if next_abs < base_sample + j:
            next_abs = base_sample + j
        return n_out, next_abs
