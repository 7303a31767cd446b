"""Atelier's generation core: model store, samplers, modes and the engine.

Nothing in this package imports gradio, fastapi or webui; the UI, the REST API,
the command line and the tests all drive it through :class:`pipelines.engine.Engine`.
"""
