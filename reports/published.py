"""Published CDnet2014 F-measures to print beside bgbench's own numbers (never computed
here). Sources: ../shared/METHODS.md and the papers in ../shared/papers:
- gmm_sg, subsense, pawcs, bmn_bsn: papers/000 (BMN-BSN), Table 2 (in %);
- gmm_zivkovic, cdn_medal: papers/002 (CDN-GM + MEDAL-net), Table III; CDN-MEDAL-net has no
  PTZ entry, and its overall here is the mean of its ten published categories.
"""

from __future__ import annotations

CATEGORIES = ("badWeather", "baseline", "cameraJitter", "dynamicBackground", "intermittentObjectMotion",
              "lowFramerate", "nightVideos", "shadow", "thermal", "turbulence")
SOURCE = "papers/000 Table 2 (gmm_sg, subsense, pawcs, bmn_bsn); papers/002 Table III (gmm_zivkovic, cdn_medal)"

# category order: BDW, BSL, CJT, DMB, IOM, LFM, NGT, SHD, THM, TBL, overall (None: computed mean)
_ROWS = {
    "gmm_sg": (73.80, 82.45, 59.69, 63.30, 52.07, 53.73, 40.97, 73.70, 66.21, 46.63, 61.25),
    "subsense": (86.19, 95.03, 81.52, 81.77, 65.69, 64.45, 55.99, 89.86, 81.71, 77.92, 78.01),
    "pawcs": (81.52, 93.97, 81.37, 89.38, 77.64, 65.88, 41.52, 89.13, 83.24, 64.50, 76.81),
    "bmn_bsn": (81.24, 95.21, 69.62, 63.71, 63.69, 64.26, 61.25, 85.88, 78.49, 55.44, 71.88),
    "gmm_zivkovic": (74.06, 83.82, 56.70, 63.28, 53.25, 50.65, 39.60, 72.32, 65.48, 41.69, None),
    "cdn_medal": (90.45, 96.15, 84.27, 93.72, 82.49, 95.61, 84.50, 86.83, 91.29, 91.87, None),
}


def _table(vals):
    d = {c: v / 100 for c, v in zip(CATEGORIES, vals)}
    d["overall"] = vals[-1] / 100 if vals[-1] is not None else sum(d.values()) / len(CATEGORIES)
    return d


PUBLISHED: dict[str, dict[str, float]] = {m: _table(v) for m, v in _ROWS.items()}


def comparison(results: dict, protocol: str, dataset: str = "CDnet2014") -> tuple[list[str], list[list]]:
    """Rows: methods with published numbers; per category present in the run: ours,
    published and the gap; then both means over those same categories."""
    rows, cats = [], None
    for method, pub in PUBLISHED.items():
        s = results["summary"].get(method, {}).get(protocol)
        d = s and s["datasets"].get(dataset)
        if not d:
            continue
        present = [c for c in CATEGORIES if c in d["categories"]]
        cats = cats or present
        row: list = [method]
        ours_vals, pub_vals = [], []
        for c in cats:
            ours = d["categories"].get(c, {}).get("f_measure")
            row += [ours, pub[c], None if ours is None else ours - pub[c]]
            if ours is not None:
                ours_vals.append(ours)
                pub_vals.append(pub[c])
        mean_ours = sum(ours_vals) / len(ours_vals) if ours_vals else None
        mean_pub = sum(pub_vals) / len(pub_vals) if pub_vals else None
        row += [mean_ours, mean_pub, None if mean_ours is None else mean_ours - mean_pub, pub["overall"]]
        rows.append(row)
    header = ["method"]
    for c in cats or []:
        header += [f"{c} ours", f"{c} published", f"{c} gap"]
    header += ["mean ours", "mean published (same categories)", "gap", "published overall"]
    return header, rows
