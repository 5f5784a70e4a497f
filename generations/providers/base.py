"""The provider interface: what the pipeline needs from anything that produces media."""

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from generations.models import GenerationKind


@dataclass(frozen=True)
class ItemRequest:
    """One item (item, track or image) to produce."""

    kind: str
    model: str
    variant_label: str
    number: int
    prompt: str
    attempt: int
    # The generation's full input snapshot.
    parameters: Mapping[str, Any]
    # A private folder for the output; the caller removes it afterwards.
    workdir: Path
    # Call between steps of long work: raises Cancelled once the generation is cancelled.
    checkpoint: Callable[[], None]


@dataclass(frozen=True)
class ProducedItem:
    path: Path
    extension: str
    cost: Decimal
    provider_job_id: str = ""
    provider_status: str = "succeeded"


class Provider(ABC):
    """Produces one item per call. A remote provider submits the job, then polls it,
    calling `request.checkpoint()` between polls, and downloads the result into
    `request.workdir`; it raises GenerationError with a provider_* code on failure."""

    name: ClassVar[str]
    default_model: ClassVar[str]
    # model -> kind -> price of one unit (a second of video, 1,000 characters of
    # speech, one image).
    prices: ClassVar[Mapping[str, Mapping[str, Decimal]]]

    @abstractmethod
    def produce(self, request: ItemRequest) -> ProducedItem: ...

    def unit_price(self, *, model: str, kind: str) -> Decimal:
        return self.prices[model][kind]

    def estimate_cost(
        self, *, model: str, kind: str, parameters: Mapping[str, Any], prompts: list[str]
    ) -> Decimal:
        """What one variant's items should cost, before anything runs."""
        price = self.unit_price(model=model, kind=kind)
        if kind == GenerationKind.VIDEO_AD:
            units = Decimal(str(parameters["scene_seconds"])) * len(prompts)
        elif kind == GenerationKind.SPEECH:
            units = Decimal(sum(len(prompt) for prompt in prompts)) / 1000
        else:
            units = Decimal(len(prompts))
        return (units * price).quantize(Decimal("0.0001"))
