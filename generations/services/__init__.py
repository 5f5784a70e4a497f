"""Writes behind every user action on a generation: create and regenerate (`create`),
cancel, retry, delete and restore (`actions`); removing for good is `generations.purge`.
The API, the pages, the admin and the commands all call these. Each records what it did
in the generation's event log, as done by `by`: the generation's owner unless given
(staff acting in the admin).
"""

from generations.services.actions import (
    generation_cancel,
    generation_delete,
    generation_restore,
    generation_retry,
)
from generations.services.create import (
    TITLE_LENGTH,
    generation_create,
    generation_regenerate,
)

__all__ = [
    "TITLE_LENGTH",
    "generation_cancel",
    "generation_create",
    "generation_delete",
    "generation_regenerate",
    "generation_restore",
    "generation_retry",
]
