"""Adapters only: the Gradio UI and (later) the HTTP API, wired to the core in pipelines/."""
