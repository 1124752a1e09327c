"""One self-contained HTML page about a run: numbers, charts, pictures and animations inline.

Everything is embedded (images as data URIs, no script, no external file), so the page can be
mailed, attached to an MLflow run or opened offline. Charts are drawn with matplotlib's Agg canvas
(no pyplot: no global figure state, no display needed); animations are animated WebP written by
Pillow, which every current browser plays in an <img>.
"""

import base64
import csv
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from rvos.errors import RvosError


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def figure_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure)
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})  # no version stamp
    return buffer.getvalue()


def read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="") as handle:
            return list(csv.DictReader(handle))
    except FileNotFoundError:
        raise RvosError(f"{path}: missing") from None


def numbers(rows: list[dict[str, str]], column: str, path: Path) -> list[float]:
    try:
        return [float(row[column]) for row in rows]
    except (KeyError, TypeError, ValueError):
        raise RvosError(f"{path}: column '{column}' is missing or not numeric") from None


def curves_png(path: Path) -> bytes:
    """reports/train/curves.csv: the losses, and the whole-video validation J&F that picks the epoch."""
    rows = read_csv(path)
    if not rows:
        raise RvosError(f"{path}: no epochs")
    epochs = numbers(rows, "epoch", path)
    figure = Figure(figsize=(10, 3.6))
    loss, score = figure.subplots(1, 2)
    # Validation runs every `train.validate_every` epochs (NaN in between): plot the epochs that have it.
    for axes, columns in ((loss, ("train_loss", "val_loss")), (score, ("val_jf", "val_j", "val_f"))):
        for column in columns:
            if column in rows[0]:
                points = [(e, v) for e, v in zip(epochs, numbers(rows, column, path)) if not math.isnan(v)]
                axes.plot([e for e, _ in points], [v for _, v in points], marker="o", label=column)
    loss.set(title="loss", xlabel="epoch")
    score.set(title="validation (whole videos)", xlabel="epoch", ylim=(0, 1))
    for axes in (loss, score):
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    return figure_png(figure)


def bars_png(rows: list[dict], column: str = "J&F") -> bytes:
    """Horizontal bars of one score per test sequence, best on top."""
    ranked = sorted(rows, key=lambda r: (r[column], r["sequence"]))
    figure = Figure(figsize=(7, 0.8 + 0.22 * len(ranked)))
    axes = figure.subplots()
    axes.barh([r["sequence"] for r in ranked], [r[column] for r in ranked], color="#4c72b0")
    axes.set(xlim=(0, 1), xlabel=column, title=f"{column} per test sequence")
    axes.tick_params(axis="y", labelsize=8)
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return figure_png(figure)


def animated_webp(frames: Iterable[np.ndarray], frame_ms: int = 120) -> bytes:
    """RGB frames -> an endlessly looping animated WebP."""
    images = [Image.fromarray(np.ascontiguousarray(frame)) for frame in frames]
    if not images:
        raise ValueError("no frames to animate")
    buffer = io.BytesIO()
    images[0].save(
        buffer, "WEBP", save_all=True, append_images=images[1:], duration=frame_ms, loop=0, quality=75
    )
    return buffer.getvalue()


@dataclass
class Picture:
    caption: str
    uri: str  # a data: URI


@dataclass
class Report:
    title: str
    facts: dict[str, str]  # mode, commit, ...
    changed: list[tuple[str, str, str]]  # params that differ from the defaults: key, value, default
    scores: list[tuple[str, dict[str, float]]]  # method -> J&F, J, F (the model first)
    notes: list[str] = field(default_factory=list)  # one line each, under the scores
    charts: list[Picture] = field(default_factory=list)
    gallery: list[Picture] = field(default_factory=list)
    animations: list[Picture] = field(default_factory=list)


STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: 0.5em 1em 1em 0; vertical-align: top; }
figcaption { font-size: 0.9em; color: #555; }
img { max-width: 100%; }
.gallery img { max-width: 520px; }
"""


def table(header: list[str] | None, rows: Iterable[list[str]], numeric_from: int = 99) -> str:
    head = f"<tr>{''.join(f'<th>{escape(h)}</th>' for h in header)}</tr>" if header else ""
    body = []
    for row in rows:
        cells = [
            f'<td class="num">{escape(cell)}</td>' if i >= numeric_from else f"<td>{escape(cell)}</td>"
            for i, cell in enumerate(row)
        ]
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def figures(pictures: list[Picture], kind: str) -> str:
    items = [
        f'<figure><img src="{p.uri}" alt="{escape(p.caption)}">'
        f"<figcaption>{escape(p.caption)}</figcaption></figure>"
        for p in pictures
    ]
    return f'<div class="{kind}">{"".join(items)}</div>'


def render(report: Report) -> str:
    columns = list(dict.fromkeys(key for _, values in report.scores for key in values))  # first seen first
    score_rows = [
        [method, *(f"{values[c]:.3f}" if c in values else "" for c in columns)]
        for method, values in report.scores
    ]
    changed = (
        table(["param", "value", "default"], [list(row) for row in report.changed])
        if report.changed
        else "<p>None: the shipped defaults.</p>"
    )
    sections = [
        f"<h1>{escape(report.title)}</h1>",
        table(None, [[key, value] for key, value in report.facts.items()]),
        "<h2>Parameters that differ from the defaults</h2>",
        changed,
        "<h2>Scores on the test videos</h2>",
        table(["method", *columns], score_rows, numeric_from=1),
        "".join(f"<p>{escape(note)}</p>" for note in report.notes),
    ]
    for heading, kind, pictures in (
        ("Charts", "charts", report.charts),
        ("Worst and best test videos (frame | prediction | ground truth)", "gallery", report.gallery),
        ("Animations (prediction | ground truth)", "animations", report.animations),
    ):
        if pictures:
            sections += [f"<h2>{escape(heading)}</h2>", figures(pictures, kind)]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(report.title)}</title>\n"
        f"<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
