"""The static lineage page: one HTML file with inline CSS, JS and SVG (no network).

The table graph is drawn by the page's script at load, layer by layer (landing → staging →
core → marts); clicking a table lists its columns, clicking a column highlights its
upstream and downstream columns, and a trace of one figure is shown below.
"""

from __future__ import annotations

import html
import json
import re

from lineage.trace import LineageGraph, trace
from schemas.model import load_contracts
from schemas.vocabulary import DATA_LAYERS, LANDING
from warehouse.pages import STYLE as PAGE_STYLE
from warehouse.pages import VIEWPORT
from warehouse.settings import Settings

LAYERS = (LANDING, *DATA_LAYERS)
# Landing files of one feed differ only by their date: one node per feed file pattern.
DATE_IN_NAME = re.compile(r"\d{4}-\d{2}(-\d{2})?")


def _node_of(namespace: str, name: str) -> tuple[str, str]:
    """(node name, layer) of a lineage dataset."""
    if namespace.startswith("duckdb://"):
        return name, name.split(".", 1)[0]
    return DATE_IN_NAME.sub("*", name), LANDING


def page_data(settings: Settings, figure: str) -> dict:
    """Tables by layer with their columns, column edges of the latest runs, and the figure's trace."""
    graph = LineageGraph(settings)
    tables: dict[str, dict] = {}
    for name, contract in load_contracts().items():
        if contract.layer in LAYERS:
            tables[name] = {"layer": contract.layer, "columns": contract.column_names,
                            "description": contract.description}
    edges = set()
    for edge in graph.edges:
        if not edge["output_column"] or graph.run_of(edge["output_dataset"]) is None:
            continue
        if graph.run_of(edge["output_dataset"])["run_id"] != edge["run_id"]:
            continue
        source, layer = _node_of(edge["input_namespace"], edge["input_dataset"])
        node = tables.setdefault(source, {"layer": layer, "columns": [], "description": "landing files"})
        if edge["input_column"] not in node["columns"]:
            node["columns"].append(edge["input_column"])
        edges.add((edge["output_dataset"], edge["output_column"], source, edge["input_column"],
                   edge["type"], edge["subtype"], bool(edge["masking"])))
    return {"layers": list(LAYERS), "tables": tables, "edges": sorted(edges),
            "trace": trace(settings, figure, graph=graph)}


STYLE = """
body{font:14px system-ui,sans-serif;margin:0;color:#222}
header{padding:8px 16px;background:#23395d;color:#fff}
main{display:flex;gap:12px;padding:12px;align-items:flex-start}
#graph{flex:1 1 auto;min-width:0;border:1px solid #ccc}
#graph svg{display:block}
#side{flex:0 0 280px;min-width:0}
@media (max-width:900px){main{flex-direction:column;align-items:stretch}#side{flex:none}}
.table rect{fill:#f4f6fb;stroke:#6b7a99;rx:4}
.table text{font-size:12px;pointer-events:none}
.table.on rect{fill:#ffe9a8;stroke:#b07d00}
.table.dim{opacity:.35}
line.edge{stroke:#9aa6bf;stroke-width:1}
line.edge.on{stroke:#b07d00;stroke-width:2}
.col{cursor:pointer;padding:1px 4px}
.col.on{background:#ffe9a8}
.layer{font-weight:bold;font-size:13px}
#trace li{margin:4px 0}
code{font-size:12px;background:#f2f2f2;padding:1px 3px}
"""

# The graph is laid out for the width it has: the layers side by side when each gets a column wide
# enough, else one under another with their tables in a grid (a phone); a name too long for its
# box wraps at its dots, underscores and slashes, so no label runs out of its box.
SCRIPT = """
const data = JSON.parse(document.getElementById('lineage-data').textContent);
const svgNS = 'http://www.w3.org/2000/svg';
const PAD = 10, GAP = 6, COL_GAP = 36, MIN_COL = 150, LINE = 15, TITLE = 26;
const graph = document.getElementById('graph');
let svg = null, lit = new Set();
function el(name, attrs, parent) {
  const e = document.createElementNS(svgNS, name);
  Object.entries(attrs).forEach(([k, v]) => e.setAttribute(k, v));
  if (parent) parent.appendChild(e);
  return e;
}
function wrap(name, width, probe) {
  const fits = s => { probe.textContent = s; return probe.getComputedTextLength() <= width; };
  const lines = [];
  let line = '';
  name.split(/(?<=[._\\/-])/).forEach(part => {
    if (fits(line + part)) { line += part; return; }
    if (line) lines.push(line);
    line = '';
    for (const ch of part) {
      if (!fits(line + ch) && line) { lines.push(line); line = ''; }
      line += ch;
    }
  });
  if (line) lines.push(line);
  return lines;
}
function draw() {
  if (svg) svg.remove();
  const avail = Math.max(graph.clientWidth, 120);
  svg = el('svg', {width: avail}, graph);
  const probe = el('text', {}, el('g', {class: 'table'}, svg));
  const n = data.layers.length, col = (avail - 2 * PAD - (n - 1) * COL_GAP) / n, side = col >= MIN_COL;
  const per = side ? 1 : Math.max(1, Math.floor((avail - 2 * PAD + GAP) / (MIN_COL + GAP)));
  const W = side ? col : (avail - 2 * PAD - (per - 1) * GAP) / per;
  const pos = {};
  let height = 0, y = PAD;
  data.layers.forEach((layer, i) => {
    const names = Object.keys(data.tables).filter(t => data.tables[t].layer === layer).sort();
    const x0 = side ? PAD + i * (W + COL_GAP) : PAD;
    let top = side ? PAD : y;
    const title = el('text', {x: x0, y: top + 16, class: 'layer'}, svg);
    title.textContent = layer;
    top += TITLE;
    for (let r = 0; r < names.length; r += per) {
      const row = names.slice(r, r + per).map(name => ({name, lines: wrap(name, W - 12, probe)}));
      const h = Math.max(...row.map(b => b.lines.length)) * LINE + 9;
      row.forEach((b, k) => { pos[b.name] = {x: x0 + k * (W + GAP), y: top, h, lines: b.lines}; });
      top += h + GAP;
    }
    height = Math.max(height, top);
    y = top + PAD;
  });
  probe.parentNode.remove();
  const links = {};
  data.edges.forEach(([ot, oc, it, ic]) => { links[it + '>' + ot] = [it, ot]; });
  Object.values(links).forEach(([from, to]) => {
    const a = pos[from], b = pos[to];
    if (!a || !b) return;
    const ends = side ? [a.x + W, a.y + a.h / 2, b.x, b.y + b.h / 2] : [a.x + W / 2, a.y + a.h, b.x + W / 2, b.y];
    const line = el('line', {x1: ends[0], y1: ends[1], x2: ends[2], y2: ends[3], class: 'edge'}, svg);
    line.dataset.from = from; line.dataset.to = to;
  });
  Object.entries(pos).forEach(([name, p]) => {
    const g = el('g', {class: 'table', id: 'table-' + name}, svg);
    g.dataset.table = name;
    el('rect', {x: p.x, y: p.y, width: W, height: p.h}, g);
    const t = el('text', {x: p.x + 6, y: p.y + 16}, g);
    p.lines.forEach((s, k) => { const span = el('tspan', {x: p.x + 6, dy: k ? LINE : 0}, t); span.textContent = s; });
    el('title', {}, g).textContent = name;
    g.addEventListener('click', () => showTable(name));
  });
  svg.setAttribute('height', height + PAD);
  highlight(lit);
}
let resized = null;
window.addEventListener('resize', () => { clearTimeout(resized); resized = setTimeout(draw, 100); });

function closure(table, column, up) {
  const seen = new Set([table + '.' + column]), todo = [[table, column]];
  while (todo.length) {
    const [t, c] = todo.pop();
    data.edges.forEach(([ot, oc, it, ic]) => {
      const next = up ? (ot === t && oc === c ? [it, ic] : null) : (it === t && ic === c ? [ot, oc] : null);
      if (next && !seen.has(next[0] + '.' + next[1])) { seen.add(next[0] + '.' + next[1]); todo.push(next); }
    });
  }
  return seen;
}
function highlight(cols) {
  lit = cols;
  const tables = new Set([...cols].map(k => k.slice(0, k.lastIndexOf('.'))));
  document.querySelectorAll('.table').forEach(g => {
    g.classList.toggle('on', tables.has(g.dataset.table));
    g.classList.toggle('dim', cols.size > 0 && !tables.has(g.dataset.table));
  });
  document.querySelectorAll('line.edge').forEach(l =>
    l.classList.toggle('on', tables.has(l.dataset.from) && tables.has(l.dataset.to)));
}
function showTable(name) {
  const t = data.tables[name], side = document.getElementById('columns');
  side.innerHTML = '';
  const h = document.createElement('h3'); h.textContent = name; side.appendChild(h);
  const p = document.createElement('p'); p.textContent = t.description || ''; side.appendChild(p);
  t.columns.forEach(c => {
    const d = document.createElement('div'); d.className = 'col'; d.textContent = c; d.id = 'col-' + name + '.' + c;
    d.addEventListener('click', () => showColumn(name, c, d)); side.appendChild(d);
  });
  highlight(new Set([name + '.*']));
}
function showColumn(table, column, el) {
  document.querySelectorAll('.col').forEach(d => d.classList.remove('on')); el.classList.add('on');
  const up = closure(table, column, true), down = closure(table, column, false);
  const all = new Set([...up, ...down]); highlight(all);
  const list = document.getElementById('related'); list.innerHTML = '';
  [['upstream', up], ['downstream', down]].forEach(([label, set]) => {
    const h = document.createElement('h4'); h.textContent = label; list.appendChild(h);
    [...set].filter(k => k !== table + '.' + column).sort().forEach(k => {
      const d = document.createElement('div'); d.textContent = k; list.appendChild(d); });
  });
}
draw();
const tr = document.getElementById('trace');
data.trace.hops.forEach(hop => {
  const li = document.createElement('li');
  li.textContent = hop.dataset + '.' + hop.column + ' — run ' + (hop.run_id || 'none') +
    ' at ' + (hop.ended_at || '?') + (hop.row_count != null ? ', ' + hop.row_count + ' rows' : '') +
    (hop.checks.length ? ', checks ' + hop.checks.filter(c => c.success).length + '/' + hop.checks.length + ' pass' : '');
  hop.expression.forEach(e => { const c = document.createElement('code'); c.textContent = e;
    li.appendChild(document.createElement('br')); li.appendChild(c); });
  tr.appendChild(li);
});
const files = document.getElementById('files');
data.trace.landing_files.forEach(f => {
  const li = document.createElement('li');
  li.textContent = f.file + ' sha256 ' + f.sha256 + ' (' + f.bytes + ' bytes, arrived ' + f.ingested_at + ')';
  files.appendChild(li);
});
"""


def render_page(settings: Settings, figure: str) -> str:
    """The whole page as one string."""
    data = page_data(settings, figure)
    payload = json.dumps(data, default=str, ensure_ascii=False).replace("</", "<\\/")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">{VIEWPORT}<title>Shuku lineage</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<style>{PAGE_STYLE}{STYLE}</style></head>
<body><header>Shuku lineage — {html.escape(str(settings.home))}</header>
<main><div id="graph"></div>
<div id="side"><div id="columns"><p>Click a table to list its columns; click a column to see its lineage.</p></div>
<div id="related"></div></div></main>
<section style="padding:0 16px 16px"><h3>Trace of {html.escape(figure)}</h3><ol id="trace"></ol>
<h4>Landing files</h4><ul id="files"></ul></section>
<script type="application/json" id="lineage-data">{payload}</script>
<script>{SCRIPT}</script>
</body></html>
"""
