# C-level API of sensord._crc (cext/crc.pyx) for other Cython modules: demod.pyx cimports it.
# It lives at sensord/_crc.pxd under cext/ because Cython matches a .pxd to the module name.

from libc.stdint cimport uint8_t, uint32_t

cdef uint32_t crc24_c(const uint8_t* msg, int nbytes) noexcept nogil
cdef uint32_t syndrome_c(const uint8_t* msg, int nbits) noexcept nogil
cdef int fix_errors_c(uint8_t* msg, int nbits, uint32_t syndrome, int max_bits) noexcept nogil
