"""Consumers of the track stream (MQTT, files, TCP feeds, metrics, the web picture)."""
