"""sensord: Mode S / ADS-B sensor daemon (IQ -> frames -> detections -> tracks -> MQTT)."""

__version__ = "0.1.0"
