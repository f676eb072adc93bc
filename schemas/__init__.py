"""Governance contracts (ODCS v3.1 YAML), one per warehouse table, and the role list."""

from pathlib import Path

CONTRACTS_DIR = Path(__file__).resolve().parent
