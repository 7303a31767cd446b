"""The model store: records (what exists), hub/loaders (getting it), cache (what is in memory)."""
