"""Providers by name. Add one by subclassing Provider and listing it in PROVIDERS."""

from generations.providers.base import ItemRequest, ProducedItem, Provider
from generations.providers.local import LocalProvider

PROVIDERS: dict[str, type[Provider]] = {LocalProvider.name: LocalProvider}

__all__ = ["PROVIDERS", "ItemRequest", "ProducedItem", "Provider", "get_provider"]


def get_provider(name: str) -> Provider:
    """The provider registered under `name`; raises KeyError for an unknown one."""
    return PROVIDERS[name]()
