"""Circulation: loans, returns, renewals and local use from the ILS."""
