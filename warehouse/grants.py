"""Who may act as which role: operating-system accounts and groups mapped to roles in the home's
access configuration, ``<home>/access.yaml``.

The file is trusted only when the home's owner owns it and nobody else may write it: anyone who
could edit it could grant themselves any role. The service account (the home's owner, or the one
the file names) holds every role, the full view (`shuku sql` without ``--role``) and token
administration; without the file, every other account is refused. The account is the process's real user
(``os.getuid``), never ``$USER`` or ``$LOGNAME``, which a caller sets as they like.

    service_account: shuku        # optional: else the home's owner
    service_group: shuku          # optional: the group the home belongs to (mode 0750)
    full_view: {accounts: [shuku]}                  # `shuku sql` without --role: every layer, unguarded
    token_admins: [privacy_officer]                 # holders of these roles may create and revoke tokens
    roles:
      analyst: {groups: [library-analysts], file_group: library-analysts}
      privacy_officer: {accounts: [mlee]}

``file_group``: the group that may read the role's published database (mode 0640); without it
the file is readable by its owner alone.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from schemas.roles import load_roles, role_named
from warehouse.settings import Settings

ACCESS_CONFIG = "access.yaml"
FULL_VIEW = "(full view)"
KEYS = {"service_account", "service_group", "full_view", "token_admins", "roles"}
GRANT_KEYS = {"accounts", "groups", "file_group"}


class AccessConfigError(ValueError):
    """The access configuration cannot be trusted or read; the message names the file and the fix."""


class RoleNotGranted(PermissionError):
    """The calling account may not act as the role (or take the full view, or administer tokens)."""


@dataclass(frozen=True)
class Account:
    """An operating-system account: its name and the names of its groups."""

    name: str
    groups: frozenset[str] = frozenset()
    uid: int | None = None


@dataclass(frozen=True)
class Grant:
    accounts: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    file_group: str | None = None

    def covers(self, account: Account) -> bool:
        return account.name in self.accounts or bool(self.groups & account.groups)


@dataclass(frozen=True)
class AccessConfig:
    service_account: str                       # the home's owner
    service_group: str | None = None
    roles: dict[str, Grant] = field(default_factory=dict)
    full_view: Grant = Grant()
    token_admins: frozenset[str] = frozenset()
    path: Path | None = None                   # None: no file, the service account alone

    def is_service(self, account: Account) -> bool:
        return account.name == self.service_account

    def roles_of(self, account: Account) -> list[str]:
        if self.is_service(account):
            return list(load_roles())
        return [role for role, grant in self.roles.items() if grant.covers(account)]

    def file_group(self, role: str) -> str | None:
        grant = self.roles.get(role)
        return grant.file_group if grant else None


def current_account() -> Account:
    """The process's real account and its groups, from the system's account database."""
    uid = os.getuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = f"uid {uid}"
    groups = set()
    for gid in {os.getgid(), *os.getgroups()}:
        try:
            groups.add(grp.getgrgid(gid).gr_name)
        except KeyError:
            groups.add(f"gid {gid}")
    return Account(name, frozenset(groups), uid)


def _owner(path: Path) -> str:
    uid = path.stat().st_uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _names(path: Path, where: str, value, what: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise AccessConfigError(f"{path}: {where}: {what} must be a list of names, e.g. [{what[:-1]}-name].")
    return frozenset(value)


def _grant(path: Path, where: str, value) -> Grant:
    if not isinstance(value, dict) or set(value) - GRANT_KEYS:
        unknown = sorted(set(value) - GRANT_KEYS) if isinstance(value, dict) else None
        raise AccessConfigError(f"{path}: {where}: expected a mapping with accounts, groups and file_group"
                                + (f" (unknown key {unknown[0]!r})." if unknown else "."))
    file_group = value.get("file_group")
    if file_group is not None and not isinstance(file_group, str):
        raise AccessConfigError(f"{path}: {where}.file_group: expected one group name.")
    return Grant(_names(path, where, value.get("accounts"), "accounts"),
                 _names(path, where, value.get("groups"), "groups"), file_group)


def load_access(settings: Settings) -> AccessConfig:
    """The home's access configuration; raises AccessConfigError when it cannot be trusted."""
    owner = _owner(settings.home) if settings.home.exists() else current_account().name
    path = settings.home / ACCESS_CONFIG
    if not path.exists():
        return AccessConfig(owner)
    info = path.stat()
    if _owner(path) != owner or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise AccessConfigError(f"{path}: owned by {_owner(path)} with mode {info.st_mode & 0o777:o}; it must belong "
                                f"to the home's owner {owner} and be writable by it alone "
                                f"(`chown {owner} {path}; chmod 640 {path}`). No role is granted until then.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise AccessConfigError(f"{path}: not valid YAML ({exc}).") from None
    if not isinstance(data, dict) or set(data) - KEYS:
        unknown = sorted(set(data) - KEYS) if isinstance(data, dict) else ["(not a mapping)"]
        raise AccessConfigError(f"{path}: unknown key {unknown[0]!r}; expected {', '.join(sorted(KEYS))}.")
    roles = data.get("roles") or {}
    if not isinstance(roles, dict):
        raise AccessConfigError(f"{path}: roles: expected a mapping of role name to its grant.")
    for role in roles:
        try:
            role_named(role)
        except ValueError as exc:
            raise AccessConfigError(f"{path}: roles: {exc}") from None
    admins = _names(path, "token_admins", data.get("token_admins"), "roles")
    for role in admins:
        try:
            role_named(role)
        except ValueError as exc:
            raise AccessConfigError(f"{path}: token_admins: {exc}") from None
    group, service = data.get("service_group"), data.get("service_account", owner)
    if group is not None and not isinstance(group, str):
        raise AccessConfigError(f"{path}: service_group: expected one group name.")
    if not isinstance(service, str) or not service:
        raise AccessConfigError(f"{path}: service_account: expected one account name.")
    return AccessConfig(service, group, {r: _grant(path, f"roles.{r}", g or {}) for r, g in roles.items()},
                        _grant(path, "full_view", data.get("full_view") or {}), admins, path)


def _where(config: AccessConfig) -> str:
    return (f"grant it in {config.path}" if config.path else
            f"the service account {config.service_account} can grant it in an access.yaml in the home")


def _require(settings: Settings, account: Account | None, allowed, refusal) -> Account:
    """The calling account when ``allowed(config, account)``; else RoleNotGranted with ``refusal(config, account)``."""
    account = account or current_account()
    config = load_access(settings)
    if not allowed(config, account):
        raise RoleNotGranted(refusal(config, account))
    return account


def require_role(settings: Settings, role: str, account: Account | None = None) -> Account:
    """The calling account, when it may act as ``role``; else RoleNotGranted naming the fix."""
    role_named(role)
    return _require(settings, account, lambda config, who: role in config.roles_of(who),
                    lambda config, who: f"account {who.name} may not act as role {role}; {_where(config)} "
                                        f"(roles.{role}.accounts or .groups).")


def _no_full_view(config: AccessConfig, who: Account) -> str:
    granted = config.roles_of(who)
    hint = f"use --role {granted[0]}" if granted else "ask for a role"
    return (f"account {who.name} may not query the unguarded full view; {hint} "
            f"(or {_where(config).replace('grant it', 'grant full_view')}).")


def require_full_view(settings: Settings, account: Account | None = None) -> Account:
    """The calling account, when it may query every layer unguarded (`shuku sql` without --role)."""
    return _require(settings, account, lambda config, who: config.is_service(who) or config.full_view.covers(who),
                    _no_full_view)


def require_token_admin(settings: Settings, account: Account | None = None) -> Account:
    """The calling account, when it may create and revoke API tokens."""
    return _require(settings, account,
                    lambda config, who: config.is_service(who) or bool(config.token_admins & set(config.roles_of(who))),
                    lambda config, who: f"account {who.name} may not create or revoke API tokens: that takes one of "
                                        f"the roles in token_admins ({', '.join(sorted(config.token_admins)) or 'none listed'}); "
                                        f"{_where(config)}.")


def apply_service_group(settings: Settings) -> None:
    """Give the home to the configured service group, with the setgid bit so that what is created
    in it keeps that group (the home's owner only; others leave it as it is)."""
    group = load_access(settings).service_group
    if not group or settings.home.stat().st_uid != os.geteuid():
        return
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise AccessConfigError(f"{settings.home / ACCESS_CONFIG}: service_group: there is no group {group!r} on "
                                "this machine; create it or correct the name.") from None
    if settings.home.stat().st_gid != gid:
        os.chown(settings.home, -1, gid)
    settings.home.chmod(0o2750)
