"""The one resource every asset uses: where the warehouse lives and which library it serves."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from warehouse.library import Library, load_library
from warehouse.pseudonym import Pseudonymiser
from warehouse.settings import Settings


class ShukuWarehouse(dg.ConfigurableResource):
    """The home folder (landing, lake, quarantine, warehouse.duckdb) and the library config."""

    home: str
    library_config: str | None = None

    def settings(self) -> Settings:
        return Settings(home=Path(self.home)).ensure()

    def library(self) -> Library:
        settings = self.settings()
        return load_library(Path(self.library_config) if self.library_config
                            else settings.library_config)

    def pseudonymiser(self) -> Pseudonymiser:
        return Pseudonymiser.load(self.settings().secrets_dir)
