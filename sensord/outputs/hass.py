"""Home Assistant MQTT discovery: one ``device_tracker`` per confirmed track (opt-in, capped).

For each tracked aircraft (up to ``max_trackers``), a retained config message under
``<discovery_prefix>/device_tracker/<object_id>/config`` and its attributes (latitude,
longitude, gps_accuracy = the 95 % horizontal radius, altitude, callsign, ...) on
``sensord/<node>/hass/<icao>/attributes``. A dropped track's config is cleared (empty
retained payload), which removes the entity from Home Assistant.
"""

from __future__ import annotations

import json

from sensord.tracker.update import TrackStatus, TrackUpdate


class HassDiscovery:
    """Turns track updates into the discovery messages: ``(topic, payload, retain)``."""

    def __init__(
        self,
        node: str,
        max_trackers: int = 20,
        discovery_prefix: str = "homeassistant",
        topic_prefix: str = "sensord",
    ) -> None:
        self.node = node
        self.topic_prefix = topic_prefix
        self.max_trackers = max_trackers
        self.discovery_prefix = discovery_prefix
        self._announced: dict[str, str] = {}  # track_id -> icao with a config published
        self.over_cap = 0  # confirmed tracks not announced because of the cap

    def _object_id(self, icao: str) -> str:
        return f"sensord_{self.node}_{icao.lower()}"

    def _attributes_topic(self, icao: str) -> str:
        return f"{self.topic_prefix}/{self.node}/hass/{icao.lower()}/attributes"

    @property
    def availability_topic(self) -> str:
        return f"{self.topic_prefix}/{self.node}/status"

    def _config(self, icao: str, callsign: str | None) -> dict:
        return {
            "name": callsign or icao,
            "unique_id": self._object_id(icao),
            "object_id": self._object_id(icao),
            "json_attributes_topic": self._attributes_topic(icao),
            "availability_topic": self.availability_topic,
            "availability_template": "{{ value_json.state }}",
            "payload_available": "online",
            "payload_not_available": "offline",
            "source_type": "gps",
            "icon": "mdi:airplane",
            "device": {
                "identifiers": [f"sensord_{self.node}"],
                "name": f"sensord {self.node}",
                "manufacturer": "sensord",
            },
        }

    def messages(self, updates: list[TrackUpdate]) -> list[tuple[str, bytes, bool]]:
        """The MQTT messages these updates call for."""
        out: list[tuple[str, bytes, bool]] = []
        for u in updates:
            config_topic = None
            if u.track_id in self._announced:
                icao = self._announced[u.track_id]
                config_topic = (
                    f"{self.discovery_prefix}/device_tracker/{self._object_id(icao)}/config"
                )
            if u.status is TrackStatus.DROPPED:
                if config_topic:
                    del self._announced[u.track_id]
                    out.append((config_topic, b"", True))
                continue
            if not u.icao or u.lat_deg is None or u.lon_deg is None:
                continue
            if config_topic is None:
                if u.status is not TrackStatus.CONFIRMED:
                    continue
                if len(self._announced) >= self.max_trackers:
                    self.over_cap += 1
                    continue
                self._announced[u.track_id] = u.icao
                config_topic = (
                    f"{self.discovery_prefix}/device_tracker/{self._object_id(u.icao)}/config"
                )
                out.append(
                    (config_topic, json.dumps(self._config(u.icao, u.callsign)).encode(), True)
                )
            attributes = {
                "latitude": u.lat_deg,
                "longitude": u.lon_deg,
                "gps_accuracy": u.h_err95_m,
                "altitude_ft": u.alt_baro_ft,
                "callsign": u.callsign,
                "squawk": u.squawk,
                "ground_speed_kt": u.gs_kt,
                "track_deg": u.track_deg,
                "status": u.status.value,
            }
            out.append((self._attributes_topic(u.icao), json.dumps(attributes).encode(), False))
        return out
