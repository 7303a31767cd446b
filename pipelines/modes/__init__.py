"""One generation mode per module; each exposes ``run(request, context) -> GenerationResult``."""
