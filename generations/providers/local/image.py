"""Images for the local provider: a PNG still of the composition."""

from pathlib import Path

from generations.providers.base import ItemRequest
from generations.providers.local.common import Checkpoint, removed_on_error
from generations.providers.local.composition import Composition


def render_item(request: ItemRequest, seed: int) -> Path:
    """Render the image of ``request`` into its workdir; returns the file."""
    parameters = request.parameters
    target = request.workdir / "image.png"
    render_image(
        target,
        prompt=request.prompt,
        label=request.variant_label,
        seed=seed,
        width=int(parameters["width"]),
        height=int(parameters["height"]),
        checkpoint=request.checkpoint,
    )
    return target


def render_image(
    target: Path,
    *,
    prompt: str,
    label: str,
    seed: int,
    width: int = 1024,
    height: int = 576,
    checkpoint: Checkpoint | None = None,
) -> None:
    """Write a PNG of a gradient-and-shapes composition with the prompt and label drawn on it."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if checkpoint is not None:
        checkpoint()
    composition = Composition(prompt=prompt, label=label, seed=seed, width=width, height=height)
    image = composition.frame(0.0)
    with removed_on_error(target):
        image.save(target, format="PNG")
