"""SQL models: one `.sql` file per core and mart table (`core/`, `marts/`), what a model is
(`sql_model`), how its table is built incrementally (`incremental`), and its Dagster asset
(`model_assets`)."""
