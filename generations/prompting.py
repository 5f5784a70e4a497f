"""The prompts stage's writers, one per kind (named by its `KindSpec.write_prompts`): from
the request, the analysis and each variant's style, every item's prompt by variant label.
Pure functions of their input, so a repeated stage writes the same prompts."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

STORY_BEATS = ["Hook", "Problem", "Solution", "Proof", "Offer", "Call to action"]
IMAGE_STYLES = ["soft natural light", "studio lighting", "high contrast", "vivid colour"]


@dataclass(frozen=True)
class PromptRequest:
    """What the prompts stage knows when it writes."""

    snapshot: Mapping[str, Any]
    prompt: str
    # The prompts each variant's items were created with.
    item_prompts: list[str]
    analysis: Mapping[str, Any]
    transformation: Mapping[str, Any]

    @property
    def labels(self) -> list[str]:
        return list(self.snapshot["variants"])


def story_prompts(request: PromptRequest) -> dict[str, list[str]]:
    """Video ads: one story beat per scene, in the variant's tone and pacing, about the
    prompt or, without one, the product in the source video."""
    subject = request.prompt or _source_subject(request.analysis)
    count = int(request.snapshot["scenes_per_variant"])
    prompts = {}
    for label in request.labels:
        style = request.transformation["variants"][label]
        prompts[label] = [
            f"{STORY_BEATS[n % len(STORY_BEATS)]}: {subject}. "
            f"{style['tone'].capitalize()} tone, {style['pacing']} pacing."
            for n in range(count)
        ]
    return prompts


def section_prompts(request: PromptRequest) -> dict[str, list[str]]:
    """Speech: every voice reads the same sections of the text."""
    return dict.fromkeys(request.labels, request.item_prompts)


def styled_prompts(request: PromptRequest) -> dict[str, list[str]]:
    """Images: the prompt with a lighting style, rotating across images and variants."""
    count = int(request.snapshot["images_per_variant"])
    return {
        label: [
            f"{request.prompt}, {IMAGE_STYLES[(position + n) % len(IMAGE_STYLES)]}"
            for n in range(count)
        ]
        for position, label in enumerate(request.labels)
    }


def _source_subject(analysis: Mapping[str, Any]) -> str:
    source = analysis.get("source", {})
    return (
        f"the product in the source video ({source.get('duration_seconds') or 0:.0f} s, "
        f"{source.get('width')}x{source.get('height')})"
    )
