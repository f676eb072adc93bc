"""Who may act as which role (access.yaml), and files by need to know, on a real published home.

The tests cannot create operating-system accounts: the current account is granted (or not) in
the test home's access configuration, which names another service account; a second account is
an `Account` with a name and groups nobody holds here.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import stat

import pytest
from click.testing import CliRunner

from pipelines.cli import main
from schemas.roles import load_roles
from tests.published import copied_home, published_home
from warehouse.access import publish, role_database
from warehouse.grants import (FULL_VIEW, Account, AccessConfigError, RoleNotGranted, current_account, load_access,
                              require_full_view, require_role, require_token_admin)
from warehouse.guarded import QueryRefused, open_role_database, run_guarded
from warehouse.lake.views import compute_connection
from warehouse.settings import Settings
from warehouse.textio import read_text

ME = current_account()
VISITOR = Account("visitor", frozenset({"visitors"}))
ROLES = list(load_roles())


def _configure(settings: Settings, text: str, mode: int = 0o640) -> None:
    path = settings.home / "access.yaml"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


MINE = f"service_account: shuku-service\nroles:\n  analyst: {{accounts: [{ME.name}]}}\n"


@pytest.fixture(scope="module")
def home(tmp_path_factory, library):
    return published_home(tmp_path_factory, library)


@pytest.fixture()
def granted(home, tmp_path):
    """A copy of the published home where the current account holds the analyst role alone."""
    settings = copied_home(home, tmp_path / "granted")
    _configure(settings, MINE)
    return settings


def _access_log(settings: Settings, sql: str) -> list[tuple]:
    con = compute_connection(settings)
    try:
        return con.execute("SELECT role, user_name, outcome, reason FROM meta.access_log WHERE sql_sha256 = ?",
                           [hashlib.sha256(sql.encode()).hexdigest()]).fetchall()
    finally:
        con.close()


def test_without_a_configuration_the_home_owner_holds_every_role_and_nobody_else_any(tmp_path):
    settings = Settings(tmp_path / "h").ensure()
    assert load_access(settings).path is None
    assert sorted(load_access(settings).roles_of(ME)) == sorted(ROLES)
    assert require_full_view(settings) == ME and require_token_admin(settings) == ME


@pytest.mark.parametrize("role", ROLES)
def test_a_second_account_without_a_grant_is_refused_every_role(tmp_path, role):
    settings = Settings(tmp_path / "h").ensure()
    with pytest.raises(RoleNotGranted, match=f"account visitor may not act as role {role}"):
        require_role(settings, role, VISITOR)
    _configure(settings, MINE)
    with pytest.raises(RoleNotGranted, match=f"account visitor may not act as role {role}; grant it in"):
        require_role(settings, role, VISITOR)


def test_a_second_account_is_refused_the_full_view_and_tokens(tmp_path):
    settings = Settings(tmp_path / "h").ensure()
    with pytest.raises(RoleNotGranted, match="account visitor may not query the unguarded full view; ask for a role"):
        require_full_view(settings, VISITOR)
    with pytest.raises(RoleNotGranted, match="account visitor may not create or revoke API tokens"):
        require_token_admin(settings, VISITOR)


@pytest.mark.parametrize("config, account, roles", [
    ("roles:\n  analyst: {groups: [visitors]}\n", VISITOR, ["analyst"]),
    ("roles:\n  analyst: {accounts: [visitor]}\n  public: {groups: [visitors]}\n", VISITOR, ["analyst", "public"]),
    ("roles:\n  analyst: {groups: [staff]}\n", VISITOR, []),
    ("roles:\n  auditor: {accounts: [Visitor]}\n", VISITOR, []),              # names are exact
    ("roles:\n  privacy_officer: {}\n", VISITOR, []),
    ("service_account: visitor\n", VISITOR, ROLES),
], ids=["group", "account-and-group", "other-group", "case", "empty-grant", "named-service"])
def test_grants_by_account_and_group(tmp_path, config, account, roles):
    settings = Settings(tmp_path / "h").ensure()
    _configure(settings, config)
    assert sorted(load_access(settings).roles_of(account)) == sorted(roles)


@pytest.mark.parametrize("config, message", [
    ("roles: [analyst]\n", "roles: expected a mapping"),
    ("roles:\n  dean: {accounts: [x]}\n", "roles: unknown role 'dean'"),
    ("roles:\n  analyst: {users: [x]}\n", "roles.analyst: expected a mapping with accounts, groups and file_group "
                                          "(unknown key 'users')"),
    ("roles:\n  analyst: {accounts: x}\n", "roles.analyst: accounts must be a list of names"),
    ("roles:\n  analyst: {accounts: ['']}\n", "roles.analyst: accounts must be a list of names"),
    ("roles:\n  analyst: {file_group: [a, b]}\n", "roles.analyst.file_group: expected one group name"),
    ("token_admins: [dean]\n", "token_admins: unknown role 'dean'"),
    ("granted: everyone\n", "unknown key 'granted'"),
    ("- analyst\n", "unknown key '(not a mapping)'"),
    ("roles: {analyst: [\n", "not valid YAML"),
    ("service_account: [a]\n", "service_account: expected one account name"),
    ("service_group: [a]\n", "service_group: expected one group name"),
], ids=lambda v: v if len(v) < 30 else None)
def test_a_malformed_configuration_is_refused_with_its_fix(tmp_path, config, message):
    settings = Settings(tmp_path / "h").ensure()
    _configure(settings, config)
    with pytest.raises(AccessConfigError, match="access.yaml: " + message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        require_role(settings, "analyst", VISITOR)


@pytest.mark.parametrize("mode", [0o660, 0o646, 0o666, 0o620])
def test_a_configuration_others_may_write_grants_nothing(tmp_path, mode):
    settings = Settings(tmp_path / "h").ensure()
    _configure(settings, "roles:\n  analyst: {groups: [visitors]}\n", mode)
    with pytest.raises(AccessConfigError, match=f"mode {mode:o}; it must belong to the home's owner"):
        require_role(settings, "analyst", VISITOR)


def test_cli_refuses_roles_the_current_account_does_not_hold_and_logs_the_refusal(granted, monkeypatch):
    monkeypatch.setenv("SHUKU_HOME", str(granted.home))
    runner = CliRunner()
    sql = "SELECT count(*) AS n FROM marts.key_figures"
    ok = runner.invoke(main, ["sql", "--role", "analyst", "--format", "csv", sql])
    assert ok.exit_code == 0, ok.output
    for role in ("public", "auditor", "data_librarian", "privacy_officer"):
        refused = runner.invoke(main, ["sql", "--role", role, sql])
        assert refused.exit_code == 1 and f"account {ME.name} may not act as role {role}" in refused.stderr
    logged = _access_log(granted, sql)
    assert sorted((r, o) for r, _, o, _ in logged) == sorted(
        [("analyst", "allowed")] + [(r, "refused") for r in ("public", "auditor", "data_librarian", "privacy_officer")])
    assert {u for _, u, _, _ in logged} == {ME.name}


def test_cli_sql_without_a_role_needs_the_full_view_and_is_logged(granted, monkeypatch):
    monkeypatch.setenv("SHUKU_HOME", str(granted.home))
    runner = CliRunner()
    sql = "SELECT count(*) AS n FROM core.dim_patron"
    refused = runner.invoke(main, ["sql", sql])
    assert refused.exit_code == 1 and "may not query the unguarded full view; use --role analyst" in refused.stderr
    assert refused.stdout == ""
    _configure(granted, MINE + f"full_view: {{accounts: [{ME.name}]}}\n")
    ok = runner.invoke(main, ["sql", "--format", "csv", sql])
    assert ok.exit_code == 0 and ok.stdout.splitlines()[0] == "n"
    assert sorted(o for r, u, o, _ in _access_log(granted, sql) if r == FULL_VIEW and u == ME.name) == \
        ["allowed", "refused"]


def test_token_administration_needs_a_token_admin_role(granted, monkeypatch):
    monkeypatch.setenv("SHUKU_HOME", str(granted.home))
    runner = CliRunner()
    tokens = granted.secrets_dir / "api_tokens.json"
    before = tokens.read_bytes() if tokens.exists() else None
    refused = runner.invoke(main, ["token", "create", "--role", "privacy_officer", "--name", "portal"])
    assert refused.exit_code == 1 and "may not create or revoke API tokens" in refused.stderr
    assert refused.stdout == "" and (tokens.read_bytes() if tokens.exists() else None) == before
    assert runner.invoke(main, ["token", "revoke", "0000abcd"]).exit_code == 1
    _configure(granted, MINE + "token_admins: [analyst]\n")
    made = runner.invoke(main, ["token", "create", "--role", "public", "--name", "portal"])
    assert made.exit_code == 0 and made.stdout.startswith("shuku_")


def test_run_guarded_checks_the_real_account_not_the_environment(granted, monkeypatch):
    monkeypatch.setenv("USER", "shuku-service")
    monkeypatch.setenv("LOGNAME", "shuku-service")
    sql = "SELECT count(*) FROM marts.key_figures"
    with pytest.raises(QueryRefused, match=f"account {ME.name} may not act as role privacy_officer"):
        run_guarded(granted, sql, "privacy_officer")
    with pytest.raises(QueryRefused, match="account visitor may not act as role analyst"):
        run_guarded(granted, sql, "analyst", account=VISITOR)
    assert {(r, u, o) for r, u, o, _ in _access_log(granted, sql)} == {
        ("privacy_officer", ME.name, "refused"), ("analyst", "visitor", "refused")}


# --- files by need to know ------------------------------------------------------------------------
def test_no_file_under_the_home_is_readable_by_other_accounts_after_a_run_and_publish(home):
    exposed = [str(p.relative_to(home.home)) for p in [home.home, *home.home.rglob("*")]
               if not p.is_symlink() and p.stat().st_mode & stat.S_IRWXO]
    assert exposed == []
    assert stat.S_IMODE(home.home.stat().st_mode) & 0o777 == 0o750
    for private in (home.landing, home.secrets_dir, home.restricted):
        assert stat.S_IMODE(private.stat().st_mode) == 0o700, private
    for role in ROLES:
        assert stat.S_IMODE(role_database(home, role).stat().st_mode) == 0o640, role


def test_each_role_database_belongs_to_its_configured_group(home, tmp_path):
    settings = copied_home(home, tmp_path / "grouped")
    group = ME.groups and sorted(ME.groups)[0]
    _configure(settings, f"roles:\n  analyst: {{file_group: {group}}}\n  auditor: {{file_group: no-such-group-x}}\n")
    with pytest.raises(AccessConfigError, match="roles.auditor.file_group: there is no group 'no-such-group-x'"):
        publish(settings)
    _configure(settings, f"roles:\n  analyst: {{file_group: {group}}}\n")
    publish(settings)
    import grp
    info = role_database(settings, "analyst").stat()
    assert grp.getgrgid(info.st_gid).gr_name == group and stat.S_IMODE(info.st_mode) == 0o640


def test_a_role_connection_cannot_attach_the_other_files(home):
    con = open_role_database(home, "analyst")
    try:
        with pytest.raises(Exception, match="(?i)external access|disabled|lock"):
            con.execute(f"ATTACH '{role_database(home, 'privacy_officer')}' AS other (READ_ONLY)")
    finally:
        con.close()


def test_the_home_keeps_an_administrators_setgid_group_bit(tmp_path):
    settings = Settings(tmp_path / "h").ensure()
    settings.home.chmod(0o2775)
    settings.ensure()
    assert stat.S_IMODE(settings.home.stat().st_mode) == 0o2750
    assert os.umask(0o027) == 0o027


def test_consent_changes_are_recorded_with_the_real_account_not_the_environment(granted, monkeypatch):
    monkeypatch.setenv("SHUKU_HOME", str(granted.home))
    monkeypatch.setenv("USER", "shuku-service")
    monkeypatch.setenv("LOGNAME", "shuku-service")
    export = next((granted.landing / "patrons").glob("patrons_*.csv*"))
    text, _ = read_text(export)
    card = next(csv.DictReader(io.StringIO(text)))["cardnumber"]
    result = CliRunner().invoke(main, ["consent", "set", card, "--no-profiling"])
    assert result.exit_code == 0, result.output
    con = compute_connection(granted, ["meta.consent"])
    try:
        changed_by = con.execute("SELECT changed_by FROM meta.consent ORDER BY changed_at DESC LIMIT 1").fetchone()[0]
    finally:
        con.close()
    assert changed_by == ME.name
