"""OpenLineage lineage: events for every materialisation, column lineage, the auditor's trace."""
