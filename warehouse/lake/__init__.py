"""The lake: Parquet files, Hive-partitioned, written atomically, with DuckDB views over them.

Layout under the home folder (every path is made in `warehouse.lake.paths`):
  lake/<layer>/<table>/<partition_column>=<key>/part-0.parquet   (partitioned tables)
  lake/<layer>/<table>/part-0.parquet                           (whole tables)
  quarantine/<source>/staging_table=<t>/partition_key=<k>/part-0.parquet
A file is written to a hidden temporary name in its final folder, flushed, then renamed
over the old one, so a reader sees the old partition or the new one, never half of one
(`warehouse.lake.files`). Writers of a table take its lock (`warehouse.lake.locks`): two runs
never interleave their writes of one table; readers take no lock. Partitions are replaced,
staged beside the stored ones and checksummed in `warehouse.lake.partitions`; the DuckDB views
and connections over the files are made in `warehouse.lake.views`.
The partition column lives in the folder name, not in the file (readers get it back
through hive partitioning, typed from the contract).
"""
