"""Storage, access and privacy operations of the Shuku warehouse (imports nothing above it)."""
