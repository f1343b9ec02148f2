"""Chain of custody for solid and hazardous waste."""

__version__ = "0.1.0"
