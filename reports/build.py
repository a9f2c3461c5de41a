"""``bgbench report``: every table, plot and page of a run, from its results.json only.
Tables as Markdown, CSV and LaTeX (``\\input`` them in a document that loads booktabs and
graphicx); figures as PDF and 300-dpi PNG."""

from __future__ import annotations

from pathlib import Path

from benchmark.method import METHODS, load_catalog
from benchmark.results import write_json

from . import html, leaderboard, plots, published, tables


def families() -> dict[str, str]:
    load_catalog()
    return {e.name: e.meta.get("family") or getattr(e.obj, "family", "") for e in METHODS}


def _slug(*parts: str) -> str:
    return "_".join(p.replace("/", "-").replace(" ", "") for p in parts)


def build_report(results: dict, run_dir: Path, out: Path | None = None) -> dict[str, list[Path]]:
    """Write the report into ``out`` (default RUN_DIR/report); return the files by kind."""
    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    fam = families()
    fam.update({m: fam.get(m.split("[")[0], "") for m in results["summary"]})  # labels such as crossnet[paper]
    written: dict[str, list[Path]] = {"tables": [], "figures": [], "html": [], "json": []}

    def write(name: str, text: str, kind: str = "tables") -> None:
        p = out / name
        p.write_text(text)
        written[kind].append(p)

    boards, figures = [], {}
    for proto, ds in tables.protocols_and_datasets(results):
        slug = _slug(proto, ds)
        h, rows = tables.category_table(results, proto, ds, abbreviate=True)
        write(f"f_measure_{slug}.md", tables.markdown(h, rows) + "\n")
        write(f"f_measure_{slug}.csv", tables.to_csv(h, rows))
        write(f"f_measure_{slug}.tex", tables.latex_category_table(results, proto, ds, f"tab:f-{slug}"))
        h, rows, better = tables.metrics_table(results, proto, ds)
        write(f"metrics_{slug}.md", tables.markdown(h, rows) + "\n")
        write(f"metrics_{slug}.csv", tables.to_csv(h, rows))
        write(f"metrics_{slug}.tex", tables.latex_metrics_table(results, proto, ds, f"tab:m-{slug}"))
        figs = plots.pr_curves(results, proto, ds, out / f"pr_{slug}.png")
        figs += plots.speed_accuracy(results, proto, ds, out / f"speed_accuracy_{slug}.png", fam)
        written["figures"] += figs
        figures[(proto, ds)] = [f for f in figs if f.suffix == ".png"]
        board = leaderboard.leaderboard(results, proto, ds, fam)
        boards.append(board)
        h, rows, _ = tables.leaderboard_table(board)
        write(f"leaderboard_{slug}.md", tables.markdown(h, rows) + "\n" + leaderboard.notes_markdown(board))
        write(f"leaderboard_{slug}.tex", tables.latex_leaderboard(board, f"tab:lb-{slug}"))
        comp = published.compare(results, proto, ds)
        if comp["rows"] or comp["footnotes"]:
            write(f"published_{slug}.md", f"Published numbers: {published.SOURCE}\n\n"
                  + (tables.markdown(comp["header"], comp["rows"]) + "\n" if comp["rows"] else "")
                  + "".join(f"\n{n}\n" for n in comp["footnotes"]))
            write(f"published_{slug}.csv", tables.to_csv(comp["header"], comp["rows"]))
    for proto in sorted({p for p, _ in tables.protocols_and_datasets(results)}):
        h, rows = tables.long_table(results, proto)
        write(f"categories_{_slug(proto)}.csv", tables.to_csv(h, rows))
    mosaic = plots.mosaic(results, run_dir, out / "mosaic.png")
    written["figures"] += mosaic
    mosaic_png = next((f for f in mosaic if f.suffix == ".png"), None)
    write("leaderboard.html", html.page(results, boards, figures, mosaic_png), "html")
    write_json(out / "leaderboard.json", boards)
    written["json"].append(out / "leaderboard.json")
    return written
