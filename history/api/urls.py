from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from history.api import views
from history.api.events import EventListView
from history.api.keys import ApiKeyViewSet
from history.api.stats import StatsView

app_name = "api"

# Path converters (uuid, int) so that a malformed id is a 404 like any unknown one.
router = DefaultRouter(use_regex_path=False)
router.include_root_view = False
router.include_format_suffixes = False
router.register("generations", views.GenerationViewSet, basename="generation")
router.register("variants", views.VariantViewSet, basename="variant")
router.register("items", views.ItemViewSet, basename="item")
router.register("keys", ApiKeyViewSet, basename="api-key")

urlpatterns = [
    path("generations/<uuid:pk>/events/", EventListView.as_view(), name="generation-events"),
    path("", include(router.urls)),
    path("library/", views.LibraryView.as_view(), name="library"),
    path("trash/", views.TrashView.as_view(), name="trash"),
    path("stats/", StatsView.as_view(), name="stats"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
]
