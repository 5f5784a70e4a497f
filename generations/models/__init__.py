"""The domain's models: generations with their variants, items and metadata
(`generation`), the attempt and event logs (`records`), and the statistics' running
totals (`tally`)."""

from generations.models.generation import (
    Generation,
    GenerationMetadata,
    Item,
    SourceType,
    Variant,
)
from generations.models.records import Attempt, Event
from generations.models.tally import GenerationTally

__all__ = [
    "Attempt",
    "Event",
    "Generation",
    "GenerationMetadata",
    "GenerationTally",
    "Item",
    "SourceType",
    "Variant",
]
