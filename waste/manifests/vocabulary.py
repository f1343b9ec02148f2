"""The closed vocabularies of custody event data: event types, hazards, forms, operations."""

from __future__ import annotations

from enum import StrEnum

from waste.errors import Invalid

# Annex IV of the Basel Convention (= Annexes I and II of EU Directive 2008/98/EC).
DISPOSAL_OPERATIONS: dict[str, str] = {
    "R1": "use as a fuel or to generate energy",
    "R2": "solvent reclamation or regeneration",
    "R3": "recycling of organic substances not used as solvents",
    "R4": "recycling of metals and metal compounds",
    "R5": "recycling of other inorganic materials",
    "R6": "regeneration of acids or bases",
    "R7": "recovery of pollution-abatement components",
    "R8": "recovery of components from catalysts",
    "R9": "used oil re-refining",
    "R10": "land treatment benefiting agriculture or ecology",
    "R11": "use of residues from R1-R10",
    "R12": "exchange of wastes for R1-R11",
    "R13": "accumulation pending R1-R12",
    "D1": "deposit into or onto land",
    "D2": "land treatment",
    "D3": "deep injection",
    "D4": "surface impoundment",
    "D5": "specially engineered landfill",
    "D6": "release into a water body other than seas",
    "D7": "release into seas or oceans",
    "D8": "biological treatment",
    "D9": "physico-chemical treatment",
    "D10": "incineration on land",
    "D11": "incineration at sea",
    "D12": "permanent storage",
    "D13": "blending or mixing prior to D1-D12",
    "D14": "repackaging prior to D1-D13",
    "D15": "storage pending D1-D14",
}


class EventType(StrEnum):
    """The custody event types of the protocol."""

    FILED = "filed"
    CANCELLED = "cancelled"
    PICKED_UP = "picked_up"
    HANDED_OVER = "handed_over"
    RECEIVED = "received"
    REJECTED = "rejected"
    DISPOSED = "disposed"


class Hazard(StrEnum):
    """Hazard characteristics of the National Hazardous Waste List."""

    TOXICITY = "T"
    CORROSIVITY = "C"
    IGNITABILITY = "I"
    REACTIVITY = "R"
    INFECTIVITY = "In"


class PhysicalForm(StrEnum):
    """Physical form of a waste as shipped."""

    SOLID = "solid"
    SEMI_SOLID = "semi_solid"
    LIQUID = "liquid"
    GAS = "gas"
    SLUDGE = "sludge"


class RejectionNext(StrEnum):
    """What happens to a rejected load."""

    RETURN_TO_PRODUCER = "return_to_producer"
    REDIRECT = "redirect"


def event_type_of(value: object) -> EventType:
    """The ``EventType`` named by ``value``; ``Invalid`` (field ``type``) if there is none."""
    if isinstance(value, str):
        try:
            return EventType(value)
        except ValueError:
            pass
    raise Invalid(f"type must be one of {', '.join(EventType)}", field="type")
