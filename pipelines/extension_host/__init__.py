"""Hosting extensions: finding and loading them (loader.py, startup.py) and running their scripts (scripts.py)."""
