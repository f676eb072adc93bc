"""The words the contracts are written in, each declared here once: layers, classification
levels, partitionings and sources. Code that means one of them imports it from here."""

from __future__ import annotations

# Layers, the first part of a table's name (schemas/<layer>/<table>.odcs.yaml). Landing holds
# the files as the library systems deliver them, under no contract.
LANDING = "landing"
STAGING, CORE, MARTS = "staging", "core", "marts"
META, QUARANTINE = "meta", "quarantine"
LAYERS = (STAGING, CORE, MARTS, META, QUARANTINE)
# The layers a source's data flows through, from the feeds to the figures: their tables are
# checked on every write, exported for outside validators and de-linked from readers by retention.
DATA_LAYERS = (STAGING, CORE, MARTS)
# The layers built from staging by models (SQL files, or Python where SQL cannot say it).
MODEL_LAYERS = (CORE, MARTS)

# Classification levels, lowest to highest; a role sees a column at or below its clearance.
LEVELS = ("public", "internal", "confidential", "restricted")

# How a table is partitioned (its ``partitioning`` customProperty); no value: one snapshot.
DAY, MONTH = "day", "month"
PARTITIONINGS = (DAY, MONTH)

# The landing sources: each has a feed (or two) into staging and a quarantine.<source> table.
SOURCES = ("circulation", "holds", "patrons", "searches", "marc", "counter", "ezproxy", "gates")
