"""Per-role published databases: `access/<role>.duckdb`, holding only what the role may see.

Each file holds real tables (copies, not views onto the lake), so it is self-contained and
can be opened in any DuckDB client. It is built as a new hidden file and renamed over the
old one, so a reader holding the old file is never locked out and never sees half a file.

A nightly publish copies only what changed: when the role sees the same tables and columns as
at the last publish, the new file starts as a copy of the old one and only the tables whose lake
files changed (path, size, modification time) are copied again; of a partitioned table, only the
partitions that changed are replaced (a nightly run adds a day to a year). What each table was
copied from is kept beside the file (`.<role>.sources.json`); a file that no longer matches it,
a changed set of tables or columns, or an erasure (freed pages of a copy could still hold the
erased rows) builds the file afresh.

Roles that see exactly the same tables and columns (with the same disclosure control) share one
file's contents: the second is a hard link to the first, made in the same publish (unless their
files belong to different groups).

Each file is readable by its owner and by the group the access configuration names for the role
(``roles.<role>.file_group``, mode 0640), else by the home's group; nobody else.
"""

from __future__ import annotations

import grp
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from schemas.model import Contract, load_contracts
from schemas.roles import load_roles, role_named, visible_columns
from warehouse.data_dictionary import write_dictionary
from warehouse.disclosure import protects, suppress
from warehouse.grants import AccessConfigError, load_access
from warehouse.lake.files import flush, put_in_place, write_text_atomic
from warehouse.lake.locks import table_lock
from warehouse.lake.partitions import files_digest, partition_stamps
from warehouse.lake.views import compute_connection, partition_filter, sql_string
from warehouse.settings import Settings


@dataclass(frozen=True)
class PublishedRole:
    role: str
    path: Path
    tables: dict[str, int]          # layer.table → rows copied
    bytes: int
    suppressed: dict[str, int] = field(default_factory=dict)   # layer.table → cells hidden by disclosure control
    copied: tuple[str, ...] = ()    # the tables copied by this publish (the others were kept from the last one)
    partitions: dict[str, int] = field(default_factory=dict)  # layer.table → partitions replaced (not the table)
    layout: str = ""                # what the role sees (tables, columns, disclosure control), as a digest
    shared_with: str | None = None  # the role whose file this one links to (the same layout)


def role_database(settings: Settings, role: str) -> Path:
    return settings.access_dir / f"{role}.duckdb"


def sources_path(settings: Settings, role: str) -> Path:
    return settings.access_dir / f".{role}.sources.json"


def publish_afresh_next_time(settings: Settings) -> None:
    """Forget what the published files were copied from, so that the next publish of every role
    builds its file afresh. Called when rows were removed for privacy (a retention sweep): a file
    started from the old one could keep them in its freed pages."""
    for record in settings.access_dir.glob(".*.sources.json"):
        record.unlink(missing_ok=True)


def _readable_by_role(settings: Settings, role: str, path: Path) -> None:
    """Give the file to the role's group (access.yaml's file_group), mode 0640: before it is put in
    place, so it is never readable by anyone else."""
    group = load_access(settings).file_group(role)
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise AccessConfigError(f"{settings.home / 'access.yaml'}: roles.{role}.file_group: there is no group "
                                    f"{group!r} on this machine; create it or correct the name.") from None
        os.chown(path, -1, gid)
    path.chmod(0o640)


def _file_stamp(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _last_publish(settings: Settings, role: str, final: Path, layout: str) -> dict:
    """The record of the last publish (what each table was copied from, the cells it suppressed),
    when the published file can be reused: it is the one that publish wrote, with the same tables
    and columns. Else an empty record."""
    try:
        state = json.loads(sources_path(settings, role).read_text(encoding="utf-8"))
        if state.get("layout") == layout and state.get("database") == _file_stamp(final):
            return {"tables": dict(state["tables"]), "suppressed": dict(state.get("suppressed", {}))}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return {}


def publish_role(settings: Settings, role: str, contracts: dict[str, Contract] | None = None,
                 con=None, incremental: bool = True, same_as: PublishedRole | None = None) -> PublishedRole:
    """Write ``access/<role>.duckdb`` from the lake: per visible table, its visible columns.

    ``incremental``: start from the last published file and copy only the tables (partitions)
    whose lake files changed, when it can be reused (see the module's notes); False builds the
    file afresh. ``same_as``: a role published just before from the same lake; when this role
    sees exactly what it sees, its file is linked instead of built again.
    Under the role database's lock: two publishes of one role never share its temporary file.
    """
    with table_lock(settings, f"access.{role}"):
        return _publish_role(settings, role, contracts, con, incremental, same_as)


def _layout(role: str, contracts: dict[str, Contract]) -> tuple[bool, dict, str]:
    """(disclosure control on, visible columns per table, a digest of both) for a role."""
    suppressing = role_named(role).suppress_small_cells
    visible = {name: visible_columns(role, contract) for name, contract in sorted(contracts.items())}
    visible = {name: columns for name, columns in visible.items() if columns}
    layout = hashlib.sha256(json.dumps(
        [suppressing, {name: [c.name for c in columns] for name, columns in visible.items()}]).encode()).hexdigest()
    return suppressing, visible, layout


def _link_to(settings: Settings, role: str, final: Path, tmp: Path, other: PublishedRole) -> PublishedRole:
    """Publish ``role`` as a hard link to the file just published for ``other`` (the same layout)."""
    os.link(other.path, tmp)
    state = sources_path(settings, role)
    state.unlink(missing_ok=True)
    _readable_by_role(settings, role, tmp)
    put_in_place(tmp, final)
    shutil.copyfile(sources_path(settings, other.role), state)
    return PublishedRole(role=role, path=final, tables=other.tables, bytes=final.stat().st_size,
                         suppressed=other.suppressed, copied=other.copied, partitions=other.partitions,
                         layout=other.layout, shared_with=other.role)


def _publish_role(settings: Settings, role: str, contracts: dict[str, Contract] | None, con,
                  incremental: bool, same_as: PublishedRole | None = None) -> PublishedRole:
    contracts = load_contracts() if contracts is None else contracts
    final = role_database(settings, role)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{role}.duckdb.tmp"
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    suppressing, visible, layout = _layout(role, contracts)
    if same_as is not None and same_as.layout == layout and same_as.path.exists():
        return _link_to(settings, role, final, tmp, same_as)
    last = _last_publish(settings, role, final, layout) if incremental and final.exists() else {}
    kept = last.get("tables", {})
    if last:
        shutil.copyfile(final, tmp)
    own = con is None
    con = compute_connection(settings) if own else con
    tables, suppressed, sources, copied, partitions = {}, {}, {}, [], {}
    try:
        con.execute(f"ATTACH {sql_string(tmp)} AS published")
        try:
            for name, columns in visible.items():
                contract = contracts[name]
                select = ", ".join(f'"{c.name}"' for c in columns)
                by_partition = contract.partition_column is not None and not (suppressing and protects(contract))
                if by_partition:
                    sources[name] = {"partitions": partition_stamps(settings, contract)}
                else:
                    sources[name] = files_digest(settings, contract)
                before = kept.get(name)
                if before == sources[name]:
                    tables[name] = con.execute(f"SELECT count(*) FROM published.{name}").fetchone()[0]
                    if name in last["suppressed"]:
                        suppressed[name] = last["suppressed"][name]
                    continue
                copied.append(name)
                if by_partition and isinstance(before, dict) and isinstance(before.get("partitions"), dict):
                    now, then = sources[name]["partitions"], before["partitions"]
                    changed = sorted(day for day, stamp in now.items() if then.get(day) != stamp)
                    gone = sorted(set(then) - set(now))
                    con.execute(f"DELETE FROM published.{name} WHERE {partition_filter(contract, changed + gone)}")
                    if changed:
                        con.execute(f"INSERT INTO published.{name} SELECT {select} FROM {name} "
                                    f"WHERE {partition_filter(contract, changed)}")
                    partitions[name] = len(changed) + len(gone)
                    tables[name] = con.execute(f"SELECT count(*) FROM published.{name}").fetchone()[0]
                    continue
                con.execute(f"CREATE SCHEMA IF NOT EXISTS published.{contract.layer}")
                con.execute(f"DROP TABLE IF EXISTS published.{name}")
                if suppressing and protects(contract):
                    frame, report = suppress(con.sql(f"SELECT {select} FROM {name}").pl(), contract)
                    suppressed[name] = report.primary + report.secondary + report.derived
                    con.register("suppressed_frame", frame)
                    con.execute(f"CREATE TABLE published.{name} AS SELECT {select} FROM suppressed_frame")
                    con.unregister("suppressed_frame")
                else:
                    con.execute(f"CREATE TABLE published.{name} AS SELECT {select} FROM {name}")
                tables[name] = con.execute(f"SELECT count(*) FROM published.{name}").fetchone()[0]
            con.execute("CHECKPOINT published")
        finally:
            con.execute("DETACH published")
    finally:
        if own:
            con.close()
    flush(tmp)
    state = sources_path(settings, role)
    state.unlink(missing_ok=True)     # until the new one is written, the new file matches no record
    _readable_by_role(settings, role, tmp)
    put_in_place(tmp, final)
    write_text_atomic(state, json.dumps({"layout": layout, "database": _file_stamp(final), "tables": sources,
                                         "suppressed": suppressed}, indent=1))
    return PublishedRole(role=role, path=final, tables=tables, bytes=final.stat().st_size, suppressed=suppressed,
                         copied=tuple(copied), partitions=partitions, layout=layout)


def publish(settings: Settings, incremental: bool = True) -> list[PublishedRole]:
    """Publish every role declared in schemas/roles.yaml (see `publish_role` for ``incremental``);
    a role that sees what an earlier one sees links to its file. The data dictionary is written with
    them (`warehouse.data_dictionary`)."""
    contracts = load_contracts()
    con = compute_connection(settings)
    # A published table's rows need no particular order: DuckDB may then copy without holding
    # them back to keep the files' order (less memory for a year of logs).
    con.execute("SET preserve_insertion_order = false")
    done: list[PublishedRole] = []
    by_layout: dict[tuple[str, str | None], PublishedRole] = {}
    access = load_access(settings)
    try:
        for role in load_roles():
            group = access.file_group(role)      # a hard link shares its file's group
            published = publish_role(settings, role, contracts, con, incremental,
                                     same_as=by_layout.get((_layout(role, contracts)[2], group)))
            by_layout.setdefault((published.layout, group), published)
            done.append(published)
        write_dictionary(settings, con)     # what the roles now read, described beside them
        return done
    finally:
        con.close()
