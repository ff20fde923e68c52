"""The fusion node: every sensor node's detections (over MQTT, or from recordings) into one
air picture. ``wire`` (payloads), ``transform`` (sensor frame -> fusion frame), ``nodes``
(per-node state and counters), ``dedup`` (copies of one reply), ``fuser`` (the stage)."""
