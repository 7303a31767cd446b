"""One tab per module; each exposes ``build(ctx, shared)`` and renders inside the page's Blocks."""
