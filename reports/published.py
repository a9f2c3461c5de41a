"""Published CDnet2014 F-measures (in %) to print beside bgbench's own numbers.

Source: ../shared/METHODS.md, from papers/000 (BMN-BSN paper), Table 2. These are the
papers' numbers over the full CDnet2014 categories, not anything bgbench computed.
"""

from __future__ import annotations

CATEGORIES = ("badWeather", "baseline", "cameraJitter", "dynamicBackground", "intermittentObjectMotion",
              "lowFramerate", "nightVideos", "shadow", "thermal", "turbulence")
SOURCE = "BMN-BSN paper (papers/000), Table 2"

_ROWS = {
    "gmm_sg": (73.80, 82.45, 59.69, 63.30, 52.07, 53.73, 40.97, 73.70, 66.21, 46.63, 61.25),
    "subsense": (86.19, 95.03, 81.52, 81.77, 65.69, 64.45, 55.99, 89.86, 81.71, 77.92, 78.01),
    "pawcs": (81.52, 93.97, 81.37, 89.38, 77.64, 65.88, 41.52, 89.13, 83.24, 64.50, 76.81),
}
PUBLISHED: dict[str, dict[str, float]] = {
    m: {**{c: v / 100 for c, v in zip(CATEGORIES, vals)}, "overall": vals[-1] / 100} for m, vals in _ROWS.items()
}


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
    header += ["mean ours", "mean published (same categories)", "gap", "published overall (11 categories)"]
    return header, rows
