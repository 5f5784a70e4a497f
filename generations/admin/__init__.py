"""The staff admin of generations, variants and items.

Importing the package registers every ModelAdmin (Django's admin autodiscovery imports
`generations.admin`). Where each part lives:

- `generation.py`: the generation admin (list, search, change page, dashboard URL);
- `items.py`: the variant and item admins and the variants inline;
- `lists.py`: LargeTableAdminMixin, the estimated-count paginator and the changelist;
- `filters.py`: the list filters;
- `actions.py`: the actions on generations, each calling a service;
- `display.py`: badges, progress, thumbnails, players and the item gallery;
- `dashboard.py`: the staff dashboard;
- `base.py`: the ModelAdmin types and read-only pages.

Templates live under `templates/admin/generations/`, styles in `static/css/admin.css`.
"""

from generations.admin.generation import GenerationAdmin
from generations.admin.items import ItemAdmin, VariantAdmin

__all__ = ["GenerationAdmin", "ItemAdmin", "VariantAdmin"]
