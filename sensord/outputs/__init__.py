"""Outputs in the formats other ADS-B tools read: aircraft.json, SBS (30003), Beast (30005)."""
