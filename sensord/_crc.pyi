"""Type stub of the Cython CRC module (cext/crc.pyx): Mode S CRC-24, syndromes, correction."""

import numpy as np
import numpy.typing as npt

_Bytes = bytes | bytearray | memoryview | npt.NDArray[np.uint8]

def crc24(msg: _Bytes, nbits: int) -> int: ...
def syndrome(msg: _Bytes, nbits: int) -> int: ...
def fix_errors(msg: _Bytes, nbits: int, max_bits: int = 1) -> tuple[bytes, int]: ...
