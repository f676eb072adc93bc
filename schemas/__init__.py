"""The contract package: the governance contracts (ODCS v3.1 YAML, one per warehouse table), the
role list, and what reads them (model, roles, lint, diff, dictionary, export, vocabulary).
It imports nothing else of Shuku: every other part builds on it."""

from pathlib import Path

CONTRACTS_DIR = Path(__file__).resolve().parent
