"""infotext."""
