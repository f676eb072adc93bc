"""Headless Chromium for the page tests: Debian's package, installed when missing (as .ci/run does)."""

import subprocess
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# Without these, Chromium tries to reach Google's hosts at every start (the machine has no network).
QUIET = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run")


def ensure_chromium() -> Path:
    if not CHROMIUM.exists():
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True)
    return CHROMIUM


def dump_dom(page: Path, profile: Path, timeout: int = 120) -> str:
    """The DOM after the page's scripts ran, as Chromium serialises it."""
    return subprocess.run([str(ensure_chromium()), *QUIET, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=timeout, check=True).stdout
