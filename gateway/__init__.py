"""MQTT ingest of vehicle telemetry and e-lock events."""
