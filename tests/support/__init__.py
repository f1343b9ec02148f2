"""Test support: databases, brokers, parties."""
