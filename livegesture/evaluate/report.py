"""Reports of an evaluation: rich tables in the terminal, JSON, PNG plots.

Plots use matplotlib's object API (``Figure`` + Agg, no pyplot): no display needed, and no
global backend switched under a GUI that may share the process.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure
from rich.console import Console
from rich.table import Table

from livegesture.evaluate.metrics import ClassScores, OnsetCurve
from livegesture.events import LivegestureError
from livegesture.evaluate.recordings import Skipped
from livegesture.sources.labels import NO_GESTURE_NAME

if TYPE_CHECKING:
    from livegesture.evaluate.per_sample import SampleEvaluation
    from livegesture.evaluate.streaming import StreamEvaluation
    from livegesture.evaluate.tune import TuneResult
    from livegesture.pipeline.settings import PipelineSettings

STREAM_COLUMNS = (("recording", "recording"), ("gestures", "gestures"), ("decisions", "decisions"),
                  ("frame_accuracy", "accuracy"), ("median_latency_s", "median latency"),
                  ("never_correct", "never correct"), ("false_switches", "false switches"), ("skipped", "skipped"))
"""Columns of the per-recording table of a streaming evaluation."""
MAX_SKIPPED_LINES = 20
"""Skipped entries listed in the terminal (all of them go to the JSON file)."""
DPI = 120
PIPED_WIDTH = 120
"""Width of the tables when the output is not a terminal."""


def percent(value: float | None) -> str:
    """``0.8181`` -> ``"81.8 %"``; None (nothing to measure) -> ``"-"``."""
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f} %"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def setting_text(value: object) -> str:
    """A setting's value as the command line writes it (booleans as on/off)."""
    return ("on" if value else "off") if isinstance(value, bool) else str(value)


def prepare_output(folder: Path, names: Sequence[str]) -> Path:
    """Create the output ``folder`` and check that the files ``names`` can be written there,
    before a long run: a :class:`LivegestureError` naming the problem otherwise."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise LivegestureError(f"{folder}: output folder is an existing file") from None
    except OSError as err:
        raise LivegestureError(f"{folder}: cannot create the output folder: {err.strerror or err}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise LivegestureError(f"{folder}: cannot write in the output folder (permission denied)")
    for name in names:
        if (folder / name).is_dir():
            raise LivegestureError(f"{folder / name}: is a folder, where the results go")
    return folder


def print_warnings(console: Console, warnings: Sequence[str]) -> None:
    """One line per warning (a recording from another sensor than the model's, ...)."""
    for warning in warnings:
        console.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as indented JSON (creating the folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


def summary_table(title: str, rows: Sequence[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, value)
    return table


def report_console() -> Console:
    """The terminal, or :data:`PIPED_WIDTH` columns when the output is not one (a log file)."""
    return Console() if sys.stdout.isatty() else Console(width=PIPED_WIDTH)


def class_table(scores: ClassScores, class_names: Sequence[str], unit: str = "samples") -> Table:
    """Per true class: how many ``unit``, how many correct, accuracy."""
    table = Table(title="Per class", title_justify="left")
    for name, justify in (("#", "right"), ("class", "left"), (unit, "right"), ("correct", "right"),
                          ("accuracy", "right")):
        table.add_column(name, justify=justify)
    for k, (name, n, c, a) in enumerate(zip(class_names, scores.class_samples, scores.class_correct,
                                           scores.class_accuracy), start=1):
        table.add_row(str(k), name, str(n), str(c), percent(a))
    return table


def confusion_table(scores: ClassScores, class_names: Sequence[str]) -> Table:
    """The confusion matrix: rows true classes, columns predicted (numbered as in the class table)."""
    table = Table(title="Confusion matrix (rows: true class, columns: predicted)", title_justify="left")
    table.add_column("true \\ pred", justify="left")
    for k in range(1, len(class_names) + 1):
        table.add_column(str(k), justify="right")
    for k, row in enumerate(scores.confusion):
        table.add_row(f"{k + 1} {class_names[k]}",
                      *(f"[bold]{n}[/bold]" if j == k and n else str(n) if n else "." for j, n in enumerate(row)))
    return table


def recordings_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> Table:
    """One row per recording; ``columns`` are (key, heading), values formatted by their type."""
    table = Table(title="Per recording", title_justify="left")
    for key, heading in columns:
        table.add_column(heading, justify="left" if key == "recording" else "right")
    for row in rows:
        cells = []
        for key, _ in columns:
            value = row.get(key)
            if key == "recording":
                cells.append(Path(value).name)
            elif key.endswith("_s"):
                cells.append(seconds(value))
            elif isinstance(value, float) or value is None:
                cells.append(percent(value))
            else:
                cells.append(str(value))
        table.add_row(*cells)
    return table


def skipped_table(skipped: Sequence[Skipped]) -> Table:
    table = Table(title=f"Skipped ({sum(s.samples for s in skipped)} gestures)", title_justify="left")
    for heading in ("recording", "row", "reason"):
        table.add_column(heading)
    for s in skipped[:MAX_SKIPPED_LINES]:
        table.add_row(Path(s.recording).name, "all" if s.segment is None else str(s.segment + 1), s.reason)
    if len(skipped) > MAX_SKIPPED_LINES:
        table.add_row("...", "", f"{len(skipped) - MAX_SKIPPED_LINES} more in the JSON report")
    return table


def print_tables(console: Console, tables: Sequence[Table]) -> None:
    for table in tables:
        console.print(table)
        console.print()


def plot_confusion(scores: ClassScores, class_names: Sequence[str], path: Path, title: str) -> Path:
    """The confusion matrix as a PNG: colour = fraction of the true class's samples, text = count."""
    confusion = scores.confusion
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    n = len(class_names)
    figure = Figure(figsize=(2.5 + 0.6 * n, 1.5 + 0.55 * n), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(confusion):
        if count:
            axes.text(j, i, str(count), ha="center", va="center", fontsize=8,
                      color="white" if rates[i, j] > 0.5 else "black")
    labels = [f"{k + 1} {name}" for k, name in enumerate(class_names)]
    axes.set_xticks(range(n), [str(k + 1) for k in range(n)])
    axes.set_yticks(range(n), labels)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(title)
    figure.colorbar(image, ax=axes, label="fraction of the true class")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI)
    return path


def plot_onset_curve(curve: OnsetCurve, path: Path, title: str) -> Path:
    """Accuracy of the decisions against time since gesture onset, with the decisions per bin."""
    figure = Figure(figsize=(7, 4), layout="constrained")
    axes = figure.add_subplot()
    centres = (np.arange(len(curve.total)) + 0.5) * curve.bin_us / 1e6
    axes.plot(centres, 100 * curve.accuracy, marker="o", markersize=3)
    axes.set_ylim(0, 100)
    axes.set_xlabel("time since gesture onset (s)")
    axes.set_ylabel("correct decisions (%)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    counts = axes.twinx()
    counts.bar(centres, curve.total, width=0.8 * curve.bin_us / 1e6, alpha=0.15, color="grey")
    counts.set_ylabel("decisions")
    axes.set_zorder(counts.get_zorder() + 1)  # the curve above the bars
    axes.patch.set_visible(False)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI)
    return path


def sample_tables(evaluation: SampleEvaluation, description: str) -> list[Table]:
    """The terminal report of a per-sample evaluation."""
    scores = evaluation.scores
    rows = [("source", description), ("model", f"{evaluation.spec.model} ({evaluation.timesteps} frames + "
                                                f"{evaluation.drain_steps} drain steps per sample)"),
            ("backend", evaluation.spec.backend),
            ("accuracy", f"{percent(scores.accuracy)} ({scores.correct} of {scores.samples} gestures)")]
    trained = evaluation.training_accuracy
    if "float" in trained or "integer" in trained:
        rows.append(("at training", f"float {percent(trained.get('float'))}, integer {percent(trained.get('integer'))}"
                                    f" ({trained.get('samples', '?')} {trained.get('split', '')} samples)"))
    torch_scores = evaluation.torch_scores
    if torch_scores is not None:
        loss = (torch_scores.accuracy or 0.0) - (scores.accuracy or 0.0)
        rows.append((f"torch ({evaluation.torch_phase})",
                     f"{percent(torch_scores.accuracy)} on the same gestures: conversion loss {100 * loss:+.1f} points"))
    rows.append(("silent samples", f"{evaluation.silent} (no output spike: class 1 by the argmax rule)"))
    if evaluation.skipped:
        rows.append(("skipped", f"{evaluation.skipped_samples} gestures ({len(evaluation.skipped)} entries below)"))
    if evaluation.not_run:
        rows.append(("interrupted", f"{evaluation.not_run} gestures not run"))
    rows.append(("speed", f"{evaluation.samples_per_second:.1f} samples/s ({evaluation.seconds:.1f} s)"))
    tables = [summary_table("Per-sample evaluation", rows), class_table(scores, evaluation.class_names),
              confusion_table(scores, evaluation.class_names),
              recordings_table(evaluation.recordings(), (("recording", "recording"), ("samples", "samples"),
                                                         ("correct", "correct"), ("accuracy", "accuracy"),
                                                         ("skipped", "skipped")))]
    if evaluation.skipped:
        tables.append(skipped_table(evaluation.skipped))
    return tables


def settings_line(settings: PipelineSettings) -> str:
    """The settings that shape the decisions, in one line."""
    return (f"{settings.events_per_frame:,} events per frame, windows of {settings.clear_every} frames + "
            f"{settings.drain_steps} drain steps ({settings.mode}), smoothing {settings.smoothing}, "
            f"min confidence {settings.min_confidence}, min output spikes {settings.min_output_spikes}, "
            f"noise filter " + (f"{settings.noise_filter_kind} {settings.noise_filter_window_us / 1000:g} ms"
                                if settings.noise_filter else "off")
            + (f", roi {' '.join(map(str, settings.roi))}" if settings.roi else ""))


def stream_tables(evaluation: StreamEvaluation, description: str) -> list[Table]:
    """The terminal report of a streaming evaluation."""
    score = evaluation.score
    latency = score.latency_stats()
    rows = [("source", description), ("model", evaluation.settings.model), ("backend", evaluation.backend),
            ("settings", settings_line(evaluation.settings)),
            ("accuracy per frame", f"{percent(score.frame_accuracy)} of the decisions inside gestures"),
            ("first correct", f"median {seconds(latency['median_s'])}, mean {seconds(latency['mean_s'])}, "
                              f"90 % within {seconds(latency['p90_s'])} after onset"),
            ("never correct", f"{percent(score.never_correct)} of {len(score.gestures)} gestures"),
            ("false switches", str(score.false_switches)),
            ("idle rejection", f"{percent(score.idle_rejection)} of the decisions between gestures say no gesture"),
            ("decisions", str(score.decisions.samples))]
    skipped = sum(s.samples for s in evaluation.skipped)
    if skipped:
        rows.append(("skipped", f"{skipped} gestures ({len(evaluation.skipped)} entries below)"))
    if evaluation.not_run:
        rows.append(("interrupted", f"{evaluation.not_run} recordings not run"))
    rows.append(("time", f"{evaluation.seconds:.1f} s"))
    names = [*evaluation.class_names, NO_GESTURE_NAME]
    tables = [summary_table("Streaming evaluation", rows), class_table(score.decisions, names, "decisions"),
              recordings_table([r.row() for r in evaluation.recordings], STREAM_COLUMNS)]
    if evaluation.skipped:
        tables.append(skipped_table(evaluation.skipped))
    return tables


def tune_tables(result: TuneResult, description: str) -> list[Table]:
    """The grid, best first: varied settings, balanced accuracy (with its two parts), latency;
    the Pareto front marked."""
    front, best = set(result.front), result.best
    table = Table(title=f"Tuning on {description} ({len(result.points)} points; * Pareto front, "
                        f"> best)", title_justify="left")
    table.add_column("")
    for name in result.grid.names:
        table.add_column(name.replace("_", " "), justify="right")
    for heading in ("balanced accuracy", "inside gestures", "idle rejection", "median latency", "never correct",
                    "false switches"):
        table.add_column(heading, justify="right")
    order = sorted(range(len(result.points)), key=lambda i: (-result.points[i].accuracy, result.points[i].latency_s))
    for i in order:
        point = result.points[i]
        mark = ">" if i == best else "*" if i in front else ""
        table.add_row(mark, *(setting_text(point.changes[name]) for name in result.grid.names), percent(point.accuracy),
                      percent(point.score.frame_accuracy), percent(point.score.idle_rejection),
                      seconds(point.score.median_latency_s), percent(point.score.never_correct),
                      str(point.score.false_switches))
    tables = [table]
    if result.skipped:
        tables.append(skipped_table(result.skipped))
    return tables


def plot_pareto(result: TuneResult, path: Path, title: str) -> Path:
    """Accuracy against median latency of every grid point; the front joined, the best labelled."""
    figure = Figure(figsize=(7, 5), layout="constrained")
    axes = figure.add_subplot()
    finite = [p for p in result.points if math.isfinite(p.latency_s)]
    axes.scatter([p.latency_s for p in finite], [100 * p.accuracy for p in finite], color="grey", alpha=0.6,
                 label="grid point")
    front = sorted((result.points[i] for i in result.front if math.isfinite(result.points[i].latency_s)),
                   key=lambda p: p.latency_s)
    axes.plot([p.latency_s for p in front], [100 * p.accuracy for p in front], "o-", color="tab:blue",
              label="Pareto front")
    if result.best is not None and math.isfinite(result.points[result.best].latency_s):
        best = result.points[result.best]
        axes.scatter([best.latency_s], [100 * best.accuracy], s=160, facecolors="none", edgecolors="tab:red",
                     label="best: " + ", ".join(f"{k}={setting_text(v)}" for k, v in best.changes.items()))
    axes.set_xlabel("median time to first correct decision (s)")
    axes.set_ylabel("balanced accuracy: inside gestures and between them (%)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI)
    return path
