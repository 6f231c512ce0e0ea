"""One page of results/ from a finished multi-seed run: ``compare --seeds`` (SST) or
``sick-train --seeds`` (SICK) -> ``results/NAME.md`` (command, date, machine, seeds, wall time,
the mean ± std table, every run's row), ``results/NAME.json`` (the same, with every run's
metrics) and ``results/NAME-seed-0.png`` (the learning curves of the first seed, one line per
model).

    python benchmarks/results_pages.py runs/results/sst-fine --name sst-fine \\
        --title "SST fine-grained, 5 seeds" --command "python -m treelstm compare ..." \\
        --wall "38 min"

Reads only what the run wrote (compare.json / results.json and each run's metrics); the
numbers on the page are those files' numbers.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    """CPU model, cores, Python and torch versions."""
    import torch

    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{model}, {os.cpu_count()} cores, {platform.system()}; Python "
            f"{platform.python_version()}, torch {torch.__version__}")


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def sst_runs(report: dict) -> list[str]:
    """A markdown table with one line per (row, seed) of a compare.json."""
    from treelstm.training import COMPARE_ROWS

    fine = next(iter(next(iter(report["runs"].values())).values()))["config"]["view"] == "fine"
    header = ("| model | seed | hidden | epochs run | best epoch | fine root dev | fine root test | "
              "binary root test (from fine) | all-phrase test |" if fine else
              "| model | seed | hidden | epochs run | best epoch | binary root dev | binary root "
              "test | binary phrase test |")
    lines = [header, "|---|" + "---:|" * (header.count("|") - 2)]
    for row, runs in report["runs"].items():
        for seed, metrics in runs.items():
            test, dev = metrics["test"], metrics["best_dev"]
            cells = [COMPARE_ROWS[row][0], seed, metrics["config"]["hidden_size"],
                     metrics["epochs_done"], metrics["best_epoch"], _pct(dev["root_acc"]),
                     _pct(test["root_acc"])]
            cells += [_pct(test["binary_root_acc"])] if fine else []
            cells += [_pct(test["phrase_acc"])]
            lines.append("| " + " | ".join(map(str, cells)) + " |")
    return lines


def sick_runs(report: dict) -> list[str]:
    """A markdown table with one line per (encoder, seed) of a sick-train results.json."""
    from treelstm.sick import ENCODER_NAMES

    lines = ["| model | seed | best epoch | dev r | test r | test rho | test MSE |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for encoder in report["settings"]["models"]:
        for seed, run in report["runs"].items():
            result = run["results"][encoder]
            test = result["test"]
            lines.append(f"| {ENCODER_NAMES[encoder]} | {seed} | {result['best_epoch']} | "
                         f"{result['best_dev']['pearson']:.4f} | {test['pearson']:.4f} | "
                         f"{test['spearman']:.4f} | {test['mse']:.4f} |")
    return lines


def plot_first_seed(report: dict, kind: str, path: Path) -> None:
    """Train loss and dev score per epoch of the first seed, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, (loss_axes, dev_axes) = plt.subplots(1, 2, figsize=(10, 3.8))
    seed = str(report["seeds"][0])
    if kind == "sst":
        from treelstm.training import COMPARE_ROWS

        curves = {COMPARE_ROWS[row][0]: runs[seed]["history"]
                  for row, runs in report["runs"].items()}
        loss = {name: [r["train"]["loss"] for r in history] for name, history in curves.items()}
        dev = {name: [100 * r["dev"]["root_acc"] for r in history]
               for name, history in curves.items()}
        dev_label = "dev root accuracy (%)"
    else:
        from treelstm.sick import ENCODER_NAMES

        results = report["runs"][seed]["results"]
        loss = {ENCODER_NAMES[e]: [r["loss"] for r in results[e]["history"]] for e in results}
        dev = {ENCODER_NAMES[e]: [r["dev"]["pearson"] for r in results[e]["history"]]
               for e in results}
        dev_label = "dev Pearson's r"
    for name in loss:
        epochs = range(1, len(loss[name]) + 1)
        loss_axes.plot(epochs, loss[name], marker="o", label=name)
        dev_axes.plot(epochs, dev[name], marker="o", label=name)
    loss_label = ("train loss per tree (Tree-LSTMs: summed over its phrases)" if kind == "sst"
                  else "train loss (KL divergence)")
    for axes, label in ((loss_axes, loss_label), (dev_axes, dev_label)):
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    dev_axes.legend(fontsize=8)
    figure.suptitle(f"seed {seed}: every model's run (early-stopped runs end early)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="the --out of 'compare --seeds' or 'sick-train "
                                               "--seeds'")
    parser.add_argument("--name", required=True, help="the page: results/NAME.md, .json, .png")
    parser.add_argument("--title", required=True)
    parser.add_argument("--command", required=True, help="the command that made the run")
    parser.add_argument("--wall", required=True, help="its wall time, as text")
    parser.add_argument("--notes", default="", help="a paragraph after the table")
    parser.add_argument("--results", type=Path, default=ROOT / "results",
                        help="the folder of the pages (default: %(default)s)")
    args = parser.parse_args(argv)

    if (args.run / "compare.json").is_file():
        kind, source = "sst", args.run / "compare.json"
    elif (args.run / "results.json").is_file():
        kind, source = "sick", args.run / "results.json"
    else:
        parser.error(f"{args.run}: holds neither compare.json nor results.json")
    report = json.loads(source.read_text())
    if "seeds" not in report:
        parser.error(f"{source}: not a run over several seeds (--seeds)")
    date = datetime.date.fromtimestamp(source.stat().st_mtime).isoformat()
    host = machine()
    args.results.mkdir(parents=True, exist_ok=True)
    image = args.results / f"{args.name}-seed-{report['seeds'][0]}.png"
    plot_first_seed(report, kind, image)
    caption, table = "", report["table"].strip()
    if kind == "sst":  # compare's table starts with its caption
        caption, _, table = table.partition("\n\n")
    lines = [f"# {args.title}", "",
             f"- Command: `{args.command}`",
             f"- Date: {date}; wall time {args.wall}",
             f"- Machine: {host}",
             f"- Seeds: {', '.join(map(str, report['seeds']))}; mean ± sample standard "
             "deviation (n - 1) over the seeds",
             f"- Page made by: `python benchmarks/{Path(__file__).name} {args.run} --name "
             f"{args.name} ...` from `{source.name}`", ""]
    if caption:
        lines += [caption, ""]
    lines += [table, ""]
    if args.notes:
        lines += [args.notes, ""]
    lines += ["## Every run", ""]
    lines += sst_runs(report) if kind == "sst" else sick_runs(report)
    lines += ["", f"## Learning curves, seed {report['seeds'][0]}", "",
              f"![learning curves]({image.name})", ""]
    page = args.results / f"{args.name}.md"
    page.write_text("\n".join(lines))
    meta = {"title": args.title, "command": args.command, "date": date, "wall": args.wall,
            "machine": host, "source": str(source), **report}
    (args.results / f"{args.name}.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {page}, {args.results / (args.name + '.json')}, {image}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
