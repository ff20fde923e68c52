"""Publishers: track updates out of the daemon (MQTT)."""
