"""Patrons: the reader records exported from the ILS (direct identifiers never leave landing)."""
