from django.contrib import admin
from django.urls import include, path

from config.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/", include("history.api.urls")),
    path("storage/", include("storage.urls")),
    path("accounts/", include("history.auth_urls")),
    path("", include("history.urls")),
]

handler400 = "history.errors.bad_request"
handler403 = "history.errors.permission_denied"
handler404 = "history.errors.page_not_found"
handler500 = "history.errors.server_error"
