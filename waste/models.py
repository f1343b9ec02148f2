"""Import every feature's tables so ``Base.metadata`` knows the whole schema."""

from waste.registry import models as registry_models

__all__ = ["registry_models"]
