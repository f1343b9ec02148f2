"""Import every feature's tables so ``Base.metadata`` knows the whole schema."""

from waste.alerts import models as alert_models
from waste.ledger import models as ledger_models
from waste.manifests import models as manifest_models
from waste.registry import models as registry_models
from waste.telemetry import models as telemetry_models
from waste.webhooks import models as webhook_models

__all__ = [
    "alert_models",
    "ledger_models",
    "manifest_models",
    "registry_models",
    "telemetry_models",
    "webhook_models",
]
