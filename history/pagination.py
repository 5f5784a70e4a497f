"""Page-number pagination that never counts a whole table, shared by the API and the
pages."""

from functools import cached_property

from django.conf import settings
from django.core.paginator import Paginator
from django.db.models import QuerySet


class CappedCountPaginator(Paginator):  # type: ignore[type-arg]
    """Counts at most API_COUNT_CAP + 1 rows instead of the whole table."""

    @cached_property
    def count(self) -> int:
        object_list = self.object_list
        if isinstance(object_list, QuerySet):
            # Ids only: annotations (such as the thumbnail subquery) stay out of the count.
            return object_list.order_by().values("pk")[: settings.API_COUNT_CAP + 1].count()
        return len(object_list)
