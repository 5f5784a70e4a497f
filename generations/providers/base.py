"""The provider interface: what the pipeline needs from anything that produces media, and
what each provider declares it can do."""

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from generations.kinds import kind_spec


@dataclass(frozen=True)
class Capabilities:
    """What a provider can do; the pages, the API and the services ask this rather than
    the provider's name."""

    # The kinds it makes.
    kinds: frozenset[str]
    # Whether it can stop work it has already started remotely.
    cancels_remote_work: bool = False
    # Whether it reports job endings by webhook (else it is polled).
    receives_webhooks: bool = False
    # Whether it takes the fault-injection inputs (`generations.inputs.FAULT_FIELDS`).
    fault_injection: bool = False


@dataclass(frozen=True)
class ItemRequest:
    """One item (scene, track or image) to produce."""

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
    capabilities: ClassVar[Capabilities]
    default_model: ClassVar[str]
    # model -> kind -> price of one unit of the kind's cost (`KindSpec.cost_unit`).
    prices: ClassVar[Mapping[str, Mapping[str, Decimal]]]

    @abstractmethod
    def produce(self, request: ItemRequest) -> ProducedItem: ...

    def unit_price(self, *, model: str, kind: str) -> Decimal:
        return self.prices[model][kind]

    def estimate_cost(
        self, *, model: str, kind: str, parameters: Mapping[str, Any], prompts: list[str]
    ) -> Decimal:
        """What one variant's items should cost, before anything runs."""
        spec = kind_spec(kind)
        units = sum((spec.estimated_units(parameters, prompt) for prompt in prompts), Decimal(0))
        return (units * self.unit_price(model=model, kind=kind)).quantize(Decimal("0.0001"))
