"""Dagster assets: one package per source system, plus the SQL models."""
