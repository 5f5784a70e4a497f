"""The project's URLs plus the naive admin site the admin measurements compare against."""

from django.urls import path

from config.urls import urlpatterns as project_urlpatterns
from tests.bench.baselines import naive_site

urlpatterns = [path("naive-admin/", naive_site.urls), *project_urlpatterns]
