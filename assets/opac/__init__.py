"""OPAC: search logs and the catalogue."""
