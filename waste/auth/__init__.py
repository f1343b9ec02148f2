"""Bearer tokens, roles and the per-route declaration of who may call."""
