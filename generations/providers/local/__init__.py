"""The built-in "local" provider. Each kind it renders has its own module (`video`,
`speech`, `image`); every renderer is a pure function of its arguments, so the same item
always gives byte-identical files and the provider behaves like a reproducible model."""

from generations.providers.local.provider import LocalProvider

__all__ = ["LocalProvider"]
