"""Vehicle device clients, simulators and bridges."""
