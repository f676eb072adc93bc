"""COUNTER R5.1 reports per platform and month: TR and PR as TSV, DR as SUSHI JSON, laid
out as the official cop5 samples are."""

from __future__ import annotations

import calendar
import datetime as dt
import json
from pathlib import Path

import numpy as np

from . import vocab
from .clock import MONTHS
from .eresources import Journals

INSTITUTION = ("Demo University Library", "ISNI:0000000123456789")
HEADER_KEYS = ("Report_Name", "Report_ID", "Release", "Institution_Name", "Institution_ID", "Metric_Types",
               "Report_Filters", "Report_Attributes", "Exceptions", "Reporting_Period", "Created", "Created_By",
               "Registry_Record")
ITEM_METRICS = ("Total_Item_Investigations", "Total_Item_Requests", "Unique_Item_Investigations",
                "Unique_Item_Requests")
TITLE_METRICS = ("Unique_Title_Investigations", "Unique_Title_Requests")


def platform_slug(p: vocab.Platform) -> str:
    return p.name.replace(" ", "")


def usage(rng: np.random.Generator, requests: np.ndarray, extra_views: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics that keep COUNTER's order: Unique_Title ≤ Unique_Item ≤ Total, Requests ≤ Investigations."""
    tir = requests
    tii = requests + extra_views
    uir = rng.binomial(tir, 0.78)
    uii = uir + rng.binomial(tii - tir, 0.8)
    utr = rng.binomial(uir, 0.88)
    uti = utr + rng.binomial(uii - uir, 0.88)
    return {"Total_Item_Investigations": tii, "Total_Item_Requests": tir, "Unique_Item_Investigations": uii,
            "Unique_Item_Requests": uir, "Unique_Title_Investigations": uti, "Unique_Title_Requests": utr}


def _tsv(path: Path, header: dict[str, str], columns: list[str], rows: list[list[str]]) -> None:
    width = len(columns)
    out = [k + "\t" + header.get(k, "") + "\t" * (width - 2) for k in HEADER_KEYS]
    out.append("\t" * (width - 1))
    out.append("\t".join(columns))
    out.extend("\t".join(r) for r in rows)
    path.write_bytes(("\ufeff" + "\n".join(out) + "\n").encode("utf-8"))


def _header(name: str, rid: str, month: dt.date, attributes: str, platform: vocab.Platform) -> dict[str, str]:
    last = calendar.monthrange(month.year, month.month)[1]
    created = (month.replace(day=last) + dt.timedelta(days=3)).strftime("%Y-%m-%dT02:00:00Z")
    return {"Report_Name": name, "Report_ID": rid, "Release": "5.1", "Institution_Name": INSTITUTION[0],
            "Institution_ID": INSTITUTION[1], "Report_Attributes": attributes,
            "Reporting_Period": f"Begin_Date={month:%Y-%m-01}; End_Date={month:%Y-%m}-{last:02d}",
            "Created": created, "Created_By": platform.publisher,
            "Registry_Record": f"https://registry.countermetrics.org/platform/{platform_slug(platform).lower()}"}


def write_month(folder: Path, month: dt.date, fraction: float, views: np.ndarray, downloads: np.ndarray,
                searches: np.ndarray, journals: Journals, rng: np.random.Generator,
                ebook_shift: float = 0.0, truth: list[dict] | None = None) -> list[tuple[str, int]]:
    """Write TR, PR (TSV) and DR (JSON) for every platform for `month`; returns (file name, rows).

    `ebook_shift` raises the requests for the e-books of vocab.EBOOK_SHIFT_DISCIPLINE by that share.
    `truth` receives the usage itself, per platform, database and title (level, platform,
    name, metric, value), as it was before any report was written."""
    folder.mkdir(parents=True, exist_ok=True)
    ym = f"{month:%Y-%m}"
    mcol = f"{MONTHS[month.month - 1]}-{month.year}"
    written = []
    for pi, p in enumerate(vocab.PLATFORMS):
        slug = platform_slug(p)
        j = len(journals.title[pi])
        # The proxy sees only off-campus and logged-in use; the platform counts everyone.
        pop = 1.0 / np.arange(1, j + 1) ** 1.1
        base = rng.poisson(fraction * 400 * pop * p.weight * 5)
        req = downloads[pi] * 3 + base
        shifted = journals.is_book[pi] & (journals.discipline[pi] == vocab.EBOOK_SHIFT_DISCIPLINE)
        req = np.where(shifted, np.round(req * (1 + ebook_shift)).astype(np.int64), req)
        extra = views[pi] * 3 + rng.poisson(fraction * 300 * pop * p.weight * 5)
        current = rng.random(j) < 0.7
        m = usage(rng, req, extra)
        book = journals.is_book[pi]
        tr_rows: list[list[str]] = []
        pr: dict[tuple[str, str], int] = {}
        for t in range(j):
            if m["Total_Item_Investigations"][t] == 0:
                continue
            dtype = "Book" if book[t] else "Journal"
            yop = str(month.year if current[t] else month.year - 1 - t % 9)
            access = "Open" if t % 11 == 5 else "Controlled"
            metrics = ITEM_METRICS + (TITLE_METRICS if book[t] else ())
            issn = journals.issn[pi][t]
            doi = "" if p.chinese else f"10.{1000 + pi}/{journals.code[pi][t]}"
            for metric in sorted(metrics):
                v = int(m[metric][t])
                if v == 0:
                    continue
                tr_rows.append([journals.title[pi][t], p.publisher, f"ISNI:{p.publisher_isni}", p.name, doi,
                                f"{slug}:{journals.code[pi][t]}",
                                str(journals.isbn[pi][t]) if book[t] and journals.isbn[pi][t] else "",
                                "" if book[t] else issn, "", f"https://{p.host}/", dtype, yop, access, "Regular",
                                metric, str(v), str(v)])
                pr[(dtype, metric)] = pr.get((dtype, metric), 0) + v
        cols = ["Title", "Publisher", "Publisher_ID", "Platform", "DOI", "Proprietary_ID", "ISBN", "Print_ISSN",
                "Online_ISSN", "URI", "Data_Type", "YOP", "Access_Type", "Access_Method", "Metric_Type",
                "Reporting_Period_Total", mcol]
        if truth is not None:
            for metric, values in m.items():
                counted = values if metric in ITEM_METRICS else np.where(book, values, 0)
                truth.append({"level": "platform", "platform": p.name, "name": p.name, "metric": metric,
                              "value": int(counted.sum())})
                truth.extend({"level": "title", "platform": p.name, "name": journals.title[pi][t], "metric": metric,
                              "value": int(counted[t])} for t in np.flatnonzero(counted))
        name = f"{slug}_TR_{ym}.tsv"
        _tsv(folder / name, _header("Title Report", "TR", month, "Attributes_To_Show=YOP|Access_Type|Access_Method", p),
             cols, tr_rows)
        written.append((name, len(tr_rows)))
        n_search = int(searches[pi]) * 3 + int(rng.poisson(fraction * 200 * p.weight * 5))
        pr_rows = [[p.name, "Platform", "Regular", "Searches_Platform", str(n_search), str(n_search)]] if n_search else []
        pr_rows += [[p.name, dtype, "Regular", metric, str(v), str(v)] for (dtype, metric), v in sorted(pr.items())]
        if truth is not None:
            truth.append({"level": "platform", "platform": p.name, "name": p.name, "metric": "Searches_Platform",
                          "value": n_search})
        name = f"{slug}_PR_{ym}.tsv"
        _tsv(folder / name, _header("Platform Report", "PR", month, "Attributes_To_Show=Data_Type|Access_Method", p),
             ["Platform", "Data_Type", "Access_Method", "Metric_Type", "Reporting_Period_Total", mcol], pr_rows)
        written.append((name, len(pr_rows)))
        # DR: the platform's databases, each with its own searches and item use.
        items = []
        n_db = len(p.databases)
        share = rng.dirichlet(np.ones(n_db) * 3)
        total_req = sum(v for (d, k), v in pr.items() if k == "Total_Item_Requests")
        total_inv = sum(v for (d, k), v in pr.items() if k == "Total_Item_Investigations")
        # The databases split the platform's item use: their DR rows add up to the PR's totals.
        db_req = rng.multinomial(total_req, share / share.sum())
        db_inv = db_req + rng.multinomial(max(total_inv - total_req, 0), share / share.sum())
        dm = usage(rng, db_req, db_inv - db_req)
        for di, db in enumerate(p.databases):
            perf = {"Searches_Regular": {ym: int(rng.binomial(n_search, share[di])) if n_search else 0}}
            perf["Searches_Automated"] = {ym: int(rng.poisson(fraction * 3))}
            perf["Searches_Federated"] = {ym: int(rng.poisson(fraction * 10))}
            for metric in ITEM_METRICS + TITLE_METRICS:
                perf[metric] = {ym: int(dm[metric][di])}
            perf = {k: v for k, v in sorted(perf.items()) if v[ym] > 0}
            if truth is not None:
                truth.extend({"level": "database", "platform": p.name, "name": db, "metric": k, "value": v[ym]}
                             for k, v in perf.items())
            if not perf:
                continue
            items.append({"Database": db, "Publisher": p.publisher, "Publisher_ID": {"ISNI": [p.publisher_isni]},
                          "Platform": p.name, "Item_ID": {"Proprietary": f"{slug}:DB{di + 1}"},
                          "Attribute_Performance": [{
                              "Data_Type": "Book" if "Book" in db or "eBooks" in db else
                              ("Thesis" if "论文" in db else "Journal"),
                              "Access_Method": "Regular", "Performance": perf}]})
        h = _header("Database Report", "DR", month, "", p)
        last = calendar.monthrange(month.year, month.month)[1]
        doc = {"Report_Header": {
            "Release": "5.1", "Report_ID": "DR", "Report_Name": "Database Report", "Created": h["Created"],
            "Created_By": p.publisher, "Institution_ID": {"ISNI": [INSTITUTION[1].split(":")[1]]},
            "Institution_Name": INSTITUTION[0], "Registry_Record": h["Registry_Record"],
            "Report_Attributes": {"Attributes_To_Show": ["Data_Type", "Access_Method"]},
            "Report_Filters": {"Begin_Date": f"{ym}-01", "End_Date": f"{ym}-{last:02d}"}},
            "Report_Items": items}
        name = f"{slug}_DR_{ym}.json"
        (folder / name).write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        written.append((name, len(items)))
    return written
