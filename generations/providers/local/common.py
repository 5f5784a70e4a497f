"""What every renderer of the local provider needs: the checkpoint type, stable seeding and
clean-up of a half-written file."""

import hashlib
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

Checkpoint = Callable[[], None]


@contextmanager
def removed_on_error(target: Path) -> Iterator[None]:
    """Delete ``target`` if the block fails, so no half-written file is left behind."""
    try:
        yield
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def seeded_rng(*parts: object) -> random.Random:
    """A random generator seeded stably (unlike ``hash()``) from ``parts``."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))  # noqa: S311 - not for security
