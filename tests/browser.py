"""Headless Chromium for the page tests: Debian's package, installed when missing (as .ci/run does)."""

import subprocess
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# Without these, Chromium tries to reach Google's hosts at every start (the machine has no network).
QUIET = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic")


def ensure_chromium() -> Path:
    if not CHROMIUM.exists():
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True)
    return CHROMIUM


def dump_dom(page: Path | str, profile: Path, timeout: int = 120, settle_ms: int | None = None) -> str:
    """The DOM after the page's scripts ran, as Chromium serialises it.

    ``page`` is a file or a URL; ``settle_ms`` lets a single-page app fetch its data first
    (Chromium's virtual time, which waits for the page's pending requests).
    """
    target = page.as_uri() if isinstance(page, Path) else page
    extra = (f"--virtual-time-budget={settle_ms}", "--window-size=1600,1000") if settle_ms else ()
    return subprocess.run([str(ensure_chromium()), *QUIET, *extra, f"--user-data-dir={profile}", "--dump-dom", target],
                          capture_output=True, text=True, timeout=timeout, check=True).stdout
