"""The built-in provider: renders real media offline, deterministically, so that the
whole pipeline runs and can be demonstrated without a paid service.

Failure injection in the input (`fail_items`, `transient_fail_items`, `fail_rate`,
`delay_ms`) makes partial success, retries and cancellation reproducible.
"""

import hashlib
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from generations.errors import ErrorCode, GenerationError
from generations.kinds import GenerationKind, kind_spec
from generations.providers.base import Capabilities, ItemRequest, ProducedItem, Provider
from generations.providers.local import image, speech, video

_DELAY_STEP_SECONDS = 0.1

# The renderer of each kind: the local provider's support for it.
RENDERERS: dict[str, Callable[[ItemRequest, int], Path]] = {
    GenerationKind.VIDEO_AD: video.render_item,
    GenerationKind.SPEECH: speech.render_item,
    GenerationKind.IMAGE: image.render_item,
}


class LocalProvider(Provider):
    name = "local"
    capabilities = Capabilities(
        kinds=frozenset(GenerationKind.values), cancels_remote_work=True, fault_injection=True
    )
    default_model = "local-render-1"
    prices = {
        "local-render-1": {
            GenerationKind.VIDEO_AD: Decimal("0.0100"),
            GenerationKind.SPEECH: Decimal("0.0150"),
            GenerationKind.IMAGE: Decimal("0.0200"),
        }
    }

    def produce(self, request: ItemRequest) -> ProducedItem:
        self._wait(request)
        self._inject_failures(request)
        seed = _item_seed(request)
        target = RENDERERS[request.kind](request, seed)
        units = kind_spec(request.kind).measured_units(target, request.prompt)
        price = self.unit_price(model=request.model, kind=request.kind)
        return ProducedItem(
            path=target,
            extension=target.suffix.lstrip("."),
            cost=(units * price).quantize(Decimal("0.0001")),
            provider_job_id=f"local-{seed:08x}-{request.attempt}",
        )

    def _wait(self, request: ItemRequest) -> None:
        remaining = int(request.parameters.get("delay_ms", 0)) / 1000
        while remaining > 0:
            request.checkpoint()
            step = min(_DELAY_STEP_SECONDS, remaining)
            time.sleep(step)
            remaining -= step
        request.checkpoint()

    def _inject_failures(self, request: ItemRequest) -> None:
        parameters = request.parameters
        refs = {str(request.number), f"{request.variant_label}:{request.number}"}
        ref = f"{request.variant_label}:{request.number}"
        if refs & set(parameters.get("transient_fail_items", [])) and request.attempt == 1:
            raise GenerationError(
                ErrorCode.PROVIDER_TIMEOUT, f"Injected timeout for {ref} (transient_fail_items)."
            )
        if refs & set(parameters.get("fail_items", [])) and request.attempt <= int(
            parameters.get("fail_attempts", 1)
        ):
            raise GenerationError(
                ErrorCode.PROVIDER_REJECTED, f"Injected failure for {ref} (fail_items)."
            )
        fail_rate = float(parameters.get("fail_rate", 0))
        if fail_rate and _unit_interval(parameters["seed"], ref, request.attempt) < fail_rate:
            raise GenerationError(
                ErrorCode.PROVIDER_REJECTED, f"Injected failure for {ref} (fail_rate)."
            )


def _item_seed(request: ItemRequest) -> int:
    digest = hashlib.sha256(
        f"{request.parameters['seed']}:{request.variant_label}:{request.number}".encode()
    ).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _unit_interval(*parts: object) -> float:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
