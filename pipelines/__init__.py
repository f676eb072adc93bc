"""The composition root: Dagster definitions, jobs, schedules, sensors, resources, the CLI."""
