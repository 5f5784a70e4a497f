"""The picture shared by the video and image renderers: a seeded composition of a panning
gradient, drifting translucent shapes and the prompt and label drawn as text."""

from __future__ import annotations

import colorsys
import math
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from generations.providers.local.common import seeded_rng

_ELLIPSIS = "…"

_Colour = tuple[int, int, int]
_Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


class Composition:
    """A seeded composition that can be drawn at any point in time."""

    def __init__(self, *, prompt: str, label: str, seed: int, width: int, height: int) -> None:
        rng = seeded_rng("scene", seed, prompt, label)
        self._width = width
        self._height = height
        self._pan = max(1, min(width, height) // 10)
        self._background = _gradient(rng, width + 2 * self._pan, height + 2 * self._pan)
        self._pan_period = rng.uniform(6.0, 12.0)
        base_hue = rng.random()
        self._shapes = [
            _Shape(
                sprite=_sprite(
                    ellipse=rng.random() < 0.6,
                    colour=_hsv(base_hue + rng.uniform(0.2, 0.8), 0.7, 1.0),
                    opacity=rng.randint(90, 170),
                    size=max(2, round(rng.uniform(0.16, 0.44) * min(width, height))),
                ),
                centre=(rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.7) * height),
                swing=(rng.uniform(0.1, 0.3) * width, rng.uniform(0.05, 0.2) * height),
                period=(rng.uniform(2.5, 7.0), rng.uniform(2.5, 7.0)),
                phase=(rng.uniform(0, math.tau), rng.uniform(0, math.tau)),
            )
            for _ in range(rng.randint(4, 7))
        ]
        self._overlays = _text_overlays(prompt, label, width, height)

    def frame(self, seconds: float, *, progress: float | None = None) -> Image.Image:
        """Draw the composition at ``seconds``; ``progress`` (0..1) adds a progress bar."""
        angle = math.tau * seconds / self._pan_period
        left = round(self._pan * (1 + math.sin(angle)))
        top = round(self._pan * (1 + math.cos(angle)))
        image = self._background.crop((left, top, left + self._width, top + self._height))
        for shape in self._shapes:
            image.paste(shape.sprite, shape.position(seconds), shape.sprite)
        for overlay, position in self._overlays:
            image.paste(overlay, position, overlay)
        if progress is not None:
            bar = max(2, self._height // 90)
            ImageDraw.Draw(image, "RGBA").rectangle(
                (0, self._height - bar, round(self._width * progress), self._height),
                fill=(255, 255, 255, 200),
            )
        return image


@dataclass(frozen=True)
class _Shape:
    sprite: Image.Image
    centre: tuple[float, float]
    swing: tuple[float, float]
    period: tuple[float, float]
    phase: tuple[float, float]

    def position(self, seconds: float) -> tuple[int, int]:
        """Top-left corner of the sprite at ``seconds`` (a Lissajous path)."""
        x = self.centre[0] + self.swing[0] * math.sin(
            math.tau * seconds / self.period[0] + self.phase[0]
        )
        y = self.centre[1] + self.swing[1] * math.sin(
            math.tau * seconds / self.period[1] + self.phase[1]
        )
        return round(x - self.sprite.width / 2), round(y - self.sprite.height / 2)


def _sprite(*, ellipse: bool, colour: _Colour, opacity: int, size: int) -> Image.Image:
    """A translucent ellipse or rounded square, pre-rendered once and pasted per frame."""
    # Drawing the shape into its own mask avoids the seams that translucent fills
    # leave where Pillow's rounded-rectangle parts overlap.
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    box = (0, 0, size - 1, size - 1)
    if ellipse:
        draw.ellipse(box, fill=opacity)
    else:
        draw.rounded_rectangle(box, radius=size // 8, fill=opacity)
    sprite = Image.new("RGBA", (size, size), (*colour, 0))
    sprite.putalpha(mask)
    return sprite


def _gradient(rng: random.Random, width: int, height: int) -> Image.Image:
    """A smooth four-corner colour gradient, made by upscaling a 2x2 image."""
    hue = rng.random()
    corners = Image.new("RGB", (2, 2))
    corners.putdata(
        [
            _hsv(hue, 0.65, 0.35),
            _hsv(hue + 0.12, 0.7, 0.55),
            _hsv(hue - 0.1, 0.6, 0.45),
            _hsv(hue + 0.3, 0.75, 0.25),
        ]
    )
    # Sampling between the pixel centres stretches the blend over the whole image
    # instead of leaving flat bands along the edges.
    return corners.resize((width, height), Image.Resampling.BICUBIC, box=(0.5, 0.5, 1.5, 1.5))


def _hsv(hue: float, saturation: float, value: float) -> _Colour:
    red, green, blue = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return round(red * 255), round(green * 255), round(blue * 255)


# --- text -----------------------------------------------------------------------------


def _text_overlays(
    prompt: str, label: str, width: int, height: int
) -> list[tuple[Image.Image, tuple[int, int]]]:
    """Pre-rendered RGBA patches, with their positions, for the label and the prompt."""
    margin = max(4, height // 24)
    overlays: list[tuple[Image.Image, tuple[int, int]]] = []
    label_font = ImageFont.load_default(size=max(10, height // 16))
    label_text = " ".join(label.split())
    if label_text:
        line = _fit(label_text, label_font, width - 4 * margin)
        overlays.append((_text_patch([line], label_font, margin // 2), (margin, margin)))
    prompt_font = ImageFont.load_default(size=max(9, height // 20))
    lines = _wrap(prompt, prompt_font, width - 4 * margin, max_lines=3)
    if lines:
        patch = _text_patch(lines, prompt_font, margin // 2)
        overlays.append((patch, (margin, height - margin - patch.height)))
    return overlays


def _text_patch(lines: list[str], font: _Font, padding: int) -> Image.Image:
    """White text lines on a translucent dark rounded backdrop."""
    line_height = round(_font_size(font) * 1.3)
    text_width = max(math.ceil(font.getlength(line)) for line in lines)
    size = (text_width + 2 * padding, line_height * len(lines) + 2 * padding)
    patch = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(patch)
    draw.rounded_rectangle((0, 0, size[0] - 1, size[1] - 1), radius=padding, fill=(0, 0, 0, 140))
    for row, line in enumerate(lines):
        draw.text((padding, padding + row * line_height), line, font=font, fill=(255, 255, 255))
    return patch


def _font_size(font: _Font) -> float:
    return font.size if isinstance(font, ImageFont.FreeTypeFont) else 11.0


def _wrap(text: str, font: _Font, max_width: int, *, max_lines: int) -> list[str]:
    """Greedy word wrap to ``max_width`` pixels, ending with an ellipsis if cut short."""
    words = text.split()
    lines: list[str] = []
    index = 0
    while index < len(words) and len(lines) < max_lines:
        line = words[index]
        index += 1
        while index < len(words) and font.getlength(f"{line} {words[index]}") <= max_width:
            line = f"{line} {words[index]}"
            index += 1
        lines.append(_fit(line, font, max_width))
    if index < len(words):
        lines[-1] = _fit(lines[-1], font, max_width, truncated=True)
    return lines


def _fit(line: str, font: _Font, max_width: int, *, truncated: bool = False) -> str:
    """``line`` shortened with an ellipsis until it fits ``max_width`` pixels."""
    if not truncated and font.getlength(line) <= max_width:
        return line
    while line and font.getlength(line + _ELLIPSIS) > max_width:
        line = line[:-1]
    return line.rstrip() + _ELLIPSIS
