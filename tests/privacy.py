"""Search a home folder for card numbers, names, e-mails and phones of the patron export."""

import csv
import io

from warehouse.privacy.scan import find_values
from warehouse.settings import Settings
from warehouse.textio import read_text


def personal_values(settings: Settings) -> tuple[set[str], set[str]]:
    """(card numbers, other direct identifiers) of every reader in the landing patron exports."""
    cards, personal = set(), set()
    for path in (settings.landing / "patrons").glob("patrons_*.csv*"):
        text, _ = read_text(path)
        for row in csv.DictReader(io.StringIO(text)):
            if row.get("cardnumber"):
                cards.add(row["cardnumber"])
            for key in ("email", "phone"):
                if row.get(key):
                    personal.add(row[key])
            if row.get("surname") and row.get("firstname"):
                personal.add(row["surname"] + row["firstname"])
    return cards, personal


def find_personal_data(settings: Settings) -> list[tuple[str, str]]:
    """Where under the home folder (landing and the restricted area excepted) a value was found."""
    cards, personal = personal_values(settings)
    assert len(cards) > 20, "no patron export to take card numbers from"
    return find_values(settings, cards | personal, landing=False, restricted=False)
