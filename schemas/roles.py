"""Roles, their clearance and the layers they may read, from schemas/roles.yaml (read once).

A role sees a column when the column's classification is at or below the role's clearance
and the column's table is in one of the role's layers. Everything that decides access —
the SQL guard, the published per-role databases, the data dictionary — asks here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from schemas import CONTRACTS_DIR
from schemas.model import Column, Contract
from schemas.vocabulary import LAYERS, LEVELS

ROLES_FILE = CONTRACTS_DIR / "roles.yaml"


class UnknownRole(ValueError):
    """A role name that schemas/roles.yaml does not declare."""


@dataclass(frozen=True)
class Role:
    name: str
    clearance: str
    layers: tuple[str, ...]
    description: str
    suppress_small_cells: bool = False   # published tables suppress cells below their minCellSize

    @property
    def level(self) -> int:
        return LEVELS.index(self.clearance)


def level(classification: str) -> int:
    """Rank of a classification: public 0 … restricted 3."""
    return LEVELS.index(classification)


@lru_cache(maxsize=4)
def load_roles(path: Path = ROLES_FILE) -> dict[str, Role]:
    """Every declared role by name; the file's levels must be the contracts' levels."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if tuple(data.get("levels", ())) != LEVELS:
        raise ValueError(f"{path}: at `levels`: expected {list(LEVELS)}, found {data.get('levels')}.")
    roles = {}
    for name, spec in (data.get("roles") or {}).items():
        if spec.get("clearance") not in LEVELS:
            raise ValueError(f"{path}: at `roles.{name}.clearance`: {spec.get('clearance')!r} is not one of "
                             f"{', '.join(LEVELS)}.")
        unknown = [layer for layer in spec.get("layers") or () if layer not in LAYERS]
        if unknown:
            raise ValueError(f"{path}: at `roles.{name}.layers`: {', '.join(map(repr, unknown))} not one of "
                             f"{', '.join(LAYERS)}.")
        roles[name] = Role(name=name, clearance=spec["clearance"], layers=tuple(spec.get("layers") or ()),
                           description=spec.get("description", ""),
                           suppress_small_cells=bool(spec.get("suppress_small_cells", False)))
    return roles


def role_named(name: str) -> Role:
    roles = load_roles()
    try:
        return roles[name]
    except KeyError:
        raise UnknownRole(f"unknown role {name!r}: schemas/roles.yaml declares {', '.join(roles)}.") from None


def _role(role: Role | str) -> Role:
    return role if isinstance(role, Role) else role_named(role)


def can_read_layer(role: Role | str, contract: Contract) -> bool:
    return contract.layer in _role(role).layers


def can_see(role: Role | str, contract: Contract, column: Column) -> bool:
    role = _role(role)
    return contract.layer in role.layers and level(column.classification) <= role.level


def visible_columns(role: Role | str, contract: Contract) -> list[Column]:
    """The columns of ``contract`` that ``role`` may see (none when the layer is not the role's)."""
    role = _role(role)
    return [c for c in contract.columns if can_see(role, contract, c)]


def roles_seeing(contract: Contract, column: Column) -> list[str]:
    """Names of the roles that may see ``column``, in declaration order."""
    return [r.name for r in load_roles().values() if can_see(r, contract, column)]
