"""Quality: expectation suites generated from the contracts, run as Dagster asset checks."""
