"""Atelier's version: the one place it is written (infotext ``Version``, the API's OpenAPI version)."""

__version__ = "0.1.0"
VERSION = f"Atelier {__version__}"  # as it appears in the infotext, after A1111's "Version: v1.10.1"
