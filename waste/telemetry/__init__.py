"""Device telemetry: accepted messages, fixes, e-lock events, presence, trip legs and seals."""
