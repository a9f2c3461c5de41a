"""``bgbench report``: every table, plot and page of a run, from its typed results
(``bgbench.records.types.Results``, read from results.json) and the example frames the run
wrote into its folder; never from the data, the method registry or the job files.
Tables as Markdown, CSV and LaTeX (``\\input`` them in a document that loads booktabs and
graphicx); figures as PDF and 300-dpi PNG. One set per protocol key and dataset; file names
carry the protocol's name, and its options too where the run has the name under several."""

from __future__ import annotations

import re
from pathlib import Path

from bgbench.scoring.aggregate import protocol_name
from bgbench.records.types import Results
from bgbench.records.results import write_json

from . import citations, html, leaderboard, per_video, plots, published, tables
from .mosaic import mosaic as draw_mosaic


def _slug(*parts: str) -> str:
    return "_".join(p.replace("/", "-").replace(" ", "") for p in parts)


def protocol_slugs(results: Results) -> dict[str, str]:
    """A file-name part per protocol key: the name where the record has it under one key
    (``full``, ``cross-scene``), else the name and the options that tell the keys apart
    (``scene-specific_rule-n-200``), letters, digits and ``.+-`` only; unique."""
    keys = results.protocol_keys()
    names = {k: protocol_name(k, results) for k in keys}
    opts_of = results.meta.protocols
    run_seed = results.meta.seed
    out: dict[str, str] = {}
    for k in keys:
        name = names[k]
        if sum(n == name for n in names.values()) == 1:
            slug = name
        else:
            opts = opts_of.get(k)
            if isinstance(opts, dict):
                text = "_".join(f"{o}-{'+'.join(map(str, v)) if isinstance(v, (list, tuple)) else v}"
                                for o, v in opts.items() if o != "name" and not (o == "seed" and v == run_seed))
            else:
                text = k[len(name):]
            slug = f"{name}_{text}" if text else name
        slug = re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9.+_-]+", "-", slug)).strip("-_")
        base, n = slug, 2
        while slug in out.values():
            slug, n = f"{base}-{n}", n + 1
        out[k] = slug
    return out


def report_keys(results: Results) -> set[str]:
    """The BibTeX keys a report cites or lists: every method's paper, every paper a
    published number shown comes from, every dataset of the run."""
    keys = {k for s in results.summaries.values() if (k := citations.method_key(s.method))}
    for proto, ds in tables.protocols_and_datasets(results):
        keys |= {r["key"] for r in published.compare(results, proto, ds).get("references", [])}
        if (k := citations.DATASETS.get(ds)):
            keys.add(k)
    return keys


def build_report(results: Results, run_dir: Path, out: Path | None = None) -> dict[str, list[Path]]:
    """Write the report into ``out`` (default RUN_DIR/report); return the files by kind.
    ``run_dir`` is the run folder the recorded example frames are under (the mosaic)."""
    run_dir = Path(run_dir)
    from bgbench.safefs import claim_report_folder

    out = Path(out) if out else run_dir / "report"
    claim_report_folder(out)  # BadInput if it holds report files bgbench did not write; then marked
    written: dict[str, list[Path]] = {"tables": [], "figures": [], "html": [], "json": []}

    from bgbench.safefs import atomic_write

    def write(name: str, text: str, kind: str = "tables") -> None:
        p = out / name
        with atomic_write(p, "the report") as tmp:  # a full disk: DiskFull naming the folder, nothing half-written
            tmp.write_text(text)
        written[kind].append(p)

    boards, figures = [], {}
    slugs = protocol_slugs(results)
    for proto, ds in tables.protocols_and_datasets(results):
        slug = _slug(slugs[proto], ds)
        title = f"{ds} · protocol {tables.protocol_title(results, proto)}"
        notes = "".join(f"\n{n}\n" for n in tables.failure_notes(results, proto, ds))
        h, rows = tables.category_table(results, proto, ds, abbreviate=True)
        write(f"f_measure_{slug}.md", f"{title} · F-measure per category\n\n" + tables.markdown(h, rows) + "\n" + notes)
        write(f"f_measure_{slug}.csv", tables.to_csv(h, rows))
        write(f"f_measure_{slug}.tex", tables.latex_category_table(results, proto, ds, f"tab:f-{slug}"))
        h, rows, better = tables.metrics_table(results, proto, ds)
        write(f"metrics_{slug}.md", f"{title} · overall metrics\n\n" + tables.markdown(h, rows) + "\n" + notes)
        write(f"metrics_{slug}.csv", tables.to_csv(h, rows))
        write(f"metrics_{slug}.tex", tables.latex_metrics_table(results, proto, ds, f"tab:m-{slug}"))
        write(f"per_video_{slug}.md", per_video.markdown_video_table(results, proto, ds))
        write(f"per_video_{slug}.csv", per_video.csv_video_table(results, proto, ds))
        write(f"per_video_{slug}.tex", per_video.latex_video_table(results, proto, ds, label=f"tab:v-{slug}"))
        figs = plots.pr_curves(results, proto, ds, out / f"pr_{slug}.png")
        figs += plots.speed_accuracy(results, proto, ds, out / f"speed_accuracy_{slug}.png")
        written["figures"] += figs
        figures[(proto, ds)] = [f for f in figs if f.suffix == ".png"]
        board = leaderboard.leaderboard(results, proto, ds)
        boards.append(board)
        h, rows, _ = tables.leaderboard_table(board)
        write(f"leaderboard_{slug}.md", f"{title} · leaderboard\n\n" + tables.markdown(h, rows) + "\n"
              + leaderboard.notes_markdown(board))
        write(f"leaderboard_{slug}.tex", tables.latex_leaderboard(board, f"tab:lb-{slug}"))
        comp = published.compare(results, proto, ds)
        if comp["rows"] or comp["footnotes"]:
            write(f"published_{slug}.md", f"{title} · published numbers: {published.SOURCE}\n\n"
                  + (tables.markdown(comp["header"], published.marked_rows(comp)) + "\n" if comp["rows"] else "")
                  + "".join(f"\n{n}\n" for n in comp["footnotes"]) + notes
                  + (f"\n{published.references_text(comp)}\n" if comp.get("references") else ""))
            write(f"published_{slug}.csv", tables.to_csv(*published.csv_columns(comp)))
    for proto in sorted({p for p, _ in tables.protocols_and_datasets(results)}):
        h, rows = tables.long_table(results, proto)
        write(f"categories_{_slug(slugs[proto])}.csv", tables.to_csv(h, rows))
        write(f"videos_{_slug(slugs[proto])}.csv", tables.to_csv(*per_video.video_metrics_table(results, proto)))
    write("references.bib", citations.bibtex(report_keys(results)))
    mosaic = draw_mosaic(results, run_dir, out / "mosaic.png")
    written["figures"] += mosaic
    mosaic_png = next((f for f in mosaic if f.suffix == ".png"), None)
    write("leaderboard.html", html.page(results, boards, figures, mosaic_png), "html")
    write_json(out / "leaderboard.json", boards)
    written["json"].append(out / "leaderboard.json")
    return written
