"""Does a page fit? Headless Chromium lays it out at a given width, screenshots it, and lists every
element that overflows its box, leaves the viewport, or (an SVG label) leaves its box or its chart.

Headless Chromium lays out no narrower than 500 px, so the page is shown in an iframe of the width
asked for (a phone's 390 px too); a probe appended to a copy of the page walks its DOM after layout
and writes what it found into the parent page, which ``--dump-dom`` returns.
"""

from __future__ import annotations

import html
import json
import subprocess
from pathlib import Path

from tests.browser import QUIET, ensure_chromium

PROBE = """<script id="layout-probe">(() => {
  const found = [], slack = 1, vw = document.documentElement.clientWidth;
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (el.getAttribute('class') ? '.' + el.getAttribute('class').trim().split(/\\s+/).join('.') : '') +
    (el.textContent ? ' "' + el.textContent.trim().slice(0, 40) + '"' : '');
  const outside = (r, box) => r.left < box.left - slack || r.right > box.right + slack;
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('script, style, title, #layout-probe')) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.left < -slack || r.right > vw + slack) { found.push('leaves the viewport: ' + name(el)); continue; }
    if (el instanceof SVGTextElement) {
      const chart = el.ownerSVGElement.getBoundingClientRect();
      // a label starting inside a box drawn in its group (a table's box on the lineage graph) must end in it
      const rect = el.parentNode.tagName === 'g' ? el.parentNode.querySelector(':scope > rect') : null;
      const box = rect && rect.getBoundingClientRect();
      const inBox = box && r.left >= box.left && r.left < box.right && r.top < box.bottom && r.bottom > box.top;
      if (outside(r, chart)) found.push('leaves its chart: ' + name(el));
      else if (inBox && (outside(r, box) || r.top < box.top - slack || r.bottom > box.bottom + slack))
        found.push('leaves its box: ' + name(el));
      continue;
    }
    if (el instanceof SVGElement) continue;
    if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + slack) found.push('overflows its box: ' + name(el));
  }
  const out = parent.document.getElementById('problems-' + innerWidth);
  out.textContent = JSON.stringify(found);
  out.dataset.done = 'yes';
})();</script>"""

FRAME = """<!doctype html><html><head><meta charset="utf-8"></head>
<body style="margin:0;display:flex;gap:20px;align-items:flex-start">{frames}</body></html>"""
ONE = """<div><iframe src="{page}" style="border:1px solid #888;width:{width}px;height:{height}px;display:block"></iframe>
<pre id="problems-{width}"></pre></div>"""
DESKTOP, PHONE = 1280, 390


def layout_problems(page: Path, work: Path, widths: tuple[int, ...] = (DESKTOP, PHONE),
                    height: int = 2400) -> dict[int, list[str]]:
    """What overflows on ``page`` at each width (px), side by side in one Chromium run; the
    screenshot of them all is left at ``work/<stem>.png``."""
    work.mkdir(parents=True, exist_ok=True)
    probed = work / f"probed-{page.name}"
    text = page.read_text(encoding="utf-8")
    assert "</body>" in text, f"{page} has no </body> to add the probe before"
    probed.write_text(text.replace("</body>", PROBE + "</body>", 1), encoding="utf-8")
    frame = work / f"frame-{page.name}"
    frame.write_text(FRAME.format(frames="".join(ONE.format(page=html.escape(probed.name), width=w, height=height)
                                                 for w in widths)), encoding="utf-8")
    shot = work / f"{page.stem}.png"
    dom = subprocess.run([str(ensure_chromium()), *QUIET, "--allow-file-access-from-files",
                          f"--user-data-dir={work / 'chromium'}", f"--window-size={sum(w + 22 for w in widths)},{height}",
                          f"--screenshot={shot}", "--dump-dom", frame.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True, cwd=work).stdout
    assert shot.stat().st_size > 0, f"no screenshot of {page}"
    problems = {}
    for width in widths:
        cell = dom.split(f'id="problems-{width}"', 1)[1].split("</pre>", 1)[0]
        assert 'data-done="yes"' in cell, f"the layout probe did not run on {page} at {width} px"
        problems[width] = json.loads(html.unescape(cell.split(">", 1)[1]))
    return problems
