"""``featlab report``."""
import click


@click.command("report")
@click.option("--store", "stores", multiple=True,
              help="Store directory (repeat for several: each section uses every store that "
                   "holds its data).")
@click.option("--out", "out_dir", default="analyses/report", show_default=True,
              help="Directory for report.html, report.pdf, report.json and data/.")
@click.option("--alpha", "alphas", multiple=True, type=float,
              default=(0.0, 0.1, 1.0, 10.0), show_default=True,
              help="Joint-head foreground penalties of the alpha sweep (repeatable), on the "
                   "paper's scale (Section 3.4: beside the summed cross-entropy).")
@click.option("--n-boot", "n_boot", default=1000, show_default=True,
              help="Bootstrap resamples of the intervals.")
@click.option("--seed", default=0, show_default=True, help="Seed of every random choice.")
@click.option("--replicate", default=None,
              help="A featlab replicate folder (or its replicate.json): add the Replication "
                   "section (claims across seeds, forest plots).")
def report_command(stores, out_dir, alphas, n_boot, seed, replicate):
    """Every figure and table of the four papers, measured on the stores, as one
    self-contained HTML page (figures embedded, no network) and the same as a PDF.

    Sections: fusion paper Figures 2-5; MAT Figure 4, Table 1 and the random-walk matrix;
    M-TLAT Tables 1-2; local-properties Figures 1, 3, 4 and 6. A section no store supports
    says which featlab command produces its data. The stores are only read.

    \b
    featlab report --store cache/demo --out analyses/report
    featlab report --store cache/coco --store cache/coco-probes --alpha 0 --alpha 10
    featlab report --store cache/demo --replicate analyses/replicate
    """
    from ..reporting.report import report

    result = report(list(stores), out_dir, alphas=alphas, n_boot=n_boot, seed=seed,
                    replicate=replicate)
    for s in result["sections"]:
        gap = "" if s["status"] == "rendered" else f"  ->  {s['missing'][0]['command']}"
        click.echo(f"{s['status']:8s}  {s['id']:16s}  {s['label']}: {s['title']}{gap}")
    done = sum(s["status"] == "rendered" for s in result["sections"])
    click.echo(f"{done}/{len(result['sections'])} sections rendered; report {result['html']}, "
               f"{result['pdf']}; results {result['json']}")
