from django.urls import path
from django.views.generic import RedirectView

from history.views import account, detail, generate, lists, stats

app_name = "history"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="history:list"), name="home"),
    path("history", lists.history_list, name="list"),
    path("history/trash", lists.trash, name="trash"),
    path("history/cards/<uuid:generation_id>", lists.card, name="card"),
    path("library", lists.library, name="library"),
    path("generate", generate.generate, name="generate"),
    path("generations/<uuid:generation_id>", detail.generation_detail, name="detail"),
    path("generations/<uuid:generation_id>/live", detail.live, name="live"),
    path("generations/<uuid:generation_id>/edit", generate.edit_and_regenerate, name="edit"),
    path("generations/<uuid:generation_id>/regenerate", generate.regenerate, name="regenerate"),
    path("generations/<uuid:generation_id>/retry", generate.retry, name="retry"),
    path("generations/<uuid:generation_id>/cancel", generate.cancel, name="cancel"),
    path("generations/<uuid:generation_id>/delete", generate.delete, name="delete"),
    path("generations/<uuid:generation_id>/restore", generate.restore, name="restore"),
    path("compare", detail.compare, name="compare"),
    path("stats", stats.stats, name="stats"),
    path("account", account.account, name="account"),
    path("account/keys/<int:key_id>/revoke", account.revoke_key, name="revoke-key"),
]
