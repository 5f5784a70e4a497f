from django.urls import path

from storage import views

app_name = "storage"

urlpatterns = [
    path("objects/<str:token>", views.object_download, name="object"),
]
