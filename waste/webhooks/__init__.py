"""Webhooks: a transactional outbox, subscriptions, and signed delivery (Standard Webhooks)."""
