"""Self-contained HTML pages with sortable, filterable tables (inline CSS and JS, nothing
fetched), for the report's per-cell drill-down. Snakemake shows an HTML result in an iframe."""

from __future__ import annotations

import html
import math
import numbers

import numpy as np
import pandas as pd

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; font-size: 14px;
       color: #1f2933; margin: 1.2em; line-height: 1.45; }
h1 { font-size: 1.35em; margin: 0 0 .4em; } h2 { font-size: 1.1em; margin: 1.4em 0 .4em; }
p.caption { color: #52606d; max-width: 60em; margin: .2em 0 .8em; }
ul.findings { max-width: 60em; padding-left: 1.2em; } ul.findings li { margin: .35em 0; }
code { background: #f0f4f8; padding: 0 .2em; border-radius: 3px; }
.filter { margin: .3em 0 .6em; } .filter input { padding: .25em .5em; width: 22em; }
.wrap { overflow: auto; max-height: 80vh; border: 1px solid #d9e2ec; }
table.sortable { border-collapse: collapse; font-variant-numeric: tabular-nums; }
table.sortable th, table.sortable td { padding: .25em .6em; border-bottom: 1px solid #e4e7eb;
       white-space: nowrap; text-align: right; }
table.sortable td.text, table.sortable th.text { text-align: left; }
table.sortable thead th { position: sticky; top: 0; background: #f5f7fa; cursor: pointer;
       user-select: none; border-bottom: 2px solid #9aa5b1; }
table.sortable thead th:hover { background: #e4e7eb; }
table.sortable th[aria-sort=ascending]::after { content: " \\25B2"; }
table.sortable th[aria-sort=descending]::after { content: " \\25BC"; }
table.sortable tbody tr:nth-child(even) { background: #fafbfc; }
table.sortable tbody tr:hover { background: #fff3c4; }
.count { color: #52606d; margin-left: .8em; }
table.answer { border-collapse: collapse; margin: .4em 0 .8em; font-variant-numeric: tabular-nums; }
table.answer th, table.answer td { padding: .3em .7em; border-bottom: 1px solid #e4e7eb;
       text-align: left; vertical-align: top; }
table.answer thead th { background: #f5f7fa; border-bottom: 2px solid #9aa5b1; }
"""

# Click a header to sort (numbers numerically, empty cells last); type to filter rows.
SCRIPT = """
(function () {
  function key(td) { return td.getAttribute('data-value'); }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var tbody = table.tBodies[0];
    table.querySelectorAll('thead th').forEach(function (th, col) {
      th.addEventListener('click', function () {
        var asc = th.getAttribute('aria-sort') !== 'ascending';
        table.querySelectorAll('thead th').forEach(function (o) {
          o.removeAttribute('aria-sort');
        });
        th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
        var rows = Array.prototype.slice.call(tbody.rows);
        var numeric = rows.every(function (r) {
          var v = key(r.cells[col]); return v === '' || !isNaN(parseFloat(v)); });
        rows.sort(function (a, b) {
          var x = key(a.cells[col]), y = key(b.cells[col]);
          if (x === '' || y === '') { return (x === '') - (y === ''); }
          var c = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
          return asc ? c : -c;
        });
        rows.forEach(function (r) { tbody.appendChild(r); });
      });
    });
    var input = document.querySelector('input[data-filter="' + table.id + '"]');
    var count = document.querySelector('span[data-count="' + table.id + '"]');
    if (input) {
      input.addEventListener('input', function () {
        var q = input.value.toLowerCase(), shown = 0;
        Array.prototype.forEach.call(tbody.rows, function (r) {
          var hit = r.textContent.toLowerCase().indexOf(q) !== -1;
          r.style.display = hit ? '' : 'none'; shown += hit;
        });
        if (count) { count.textContent = shown + ' of ' + tbody.rows.length + ' rows'; }
      });
    }
  });
})();
"""


def _cell(value, digits: int) -> tuple[str, str, bool]:
    """(shown text, sort key, is text) of one value."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "", "", False
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower(), str(int(value)), True
    if isinstance(value, numbers.Integral):
        return str(int(value)), str(int(value)), False
    if isinstance(value, numbers.Real):
        return f"{float(value):.{digits}g}", repr(float(value)), False
    return str(value), str(value), True


def table(frame: pd.DataFrame, table_id: str, digits: int = 4) -> str:
    """A sortable, filterable <table> of ``frame`` (every row), with a filter box above it."""
    text_columns = {c for c in frame.columns
                    if frame[c].dtype == object or str(frame[c].dtype) in ("string", "boolean")}
    head = "".join(f'<th class="{"text" if c in text_columns else "num"}" scope="col">'
                   f"{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, row):
            shown, sort_key, is_text = _cell(value, digits)
            cls = "text" if (is_text or column in text_columns) else "num"
            cells.append(f'<td class="{cls}" data-value="{html.escape(sort_key, quote=True)}">'
                         f"{html.escape(shown)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    n = len(frame)
    return (f'<div class="filter"><input type="search" data-filter="{table_id}" '
            f'placeholder="filter rows (any text)" aria-label="filter rows">'
            f'<span class="count" data-count="{table_id}">{n} rows</span></div>'
            f'<div class="wrap"><table class="sortable" id="{table_id}"><thead><tr>{head}'
            f'</tr></thead><tbody>{"".join(body)}</tbody></table></div>')


def page(title: str, body: str) -> str:
    """A complete, self-contained HTML document."""
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>{body}<script>{SCRIPT}</script></body></html>\n")


def table_page(frame: pd.DataFrame, title: str, caption: str, table_id: str = "data") -> str:
    """A page holding one table: title, a caption saying how to read it, the table."""
    return page(title, f'<p class="caption">{html.escape(caption)} Click a column header to '
                       "sort; type to filter rows.</p>" + table(frame, table_id))
