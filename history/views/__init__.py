"""The pages: function views that read through selectors and write through services.
`access.owned_generation` is the one way a page loads a generation by id."""
