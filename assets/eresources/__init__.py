"""E-resources: COUNTER usage reports and EZproxy logs."""
