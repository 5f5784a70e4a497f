from django.conf import settings
from django.db import models
from django.db.models import Q


class ApiKey(models.Model):
    """A user's API key. Only the public prefix and a SHA-256 digest of the whole key are
    stored; the raw key is shown once, when it is created."""

    # The foreign key's index serves a user's key list (api_keys_of).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    # Authentication looks a presented key up by this part (served by the unique index).
    prefix = models.CharField(max_length=12, unique=True)
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"
        constraints = [
            # Names tell a user's active keys apart; a revoked key's name may be reused.
            models.UniqueConstraint(
                fields=["user", "name"],
                condition=Q(revoked_at__isnull=True),
                name="api_key_name_unique_active",
                violation_error_message="You already have an active key with this name.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
