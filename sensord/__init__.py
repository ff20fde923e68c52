"""sensord: Mode S / ADS-B sensor daemon (IQ -> frames -> detections -> tracks -> MQTT)."""

import os

# Small matrices only: OpenBLAS worker threads would spin and burn a Raspberry Pi's cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
