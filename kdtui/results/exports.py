"""Text exports of the results table (markdown, csv, LaTeX booktabs): one row per group,
every number formatted by ``export_cells`` so the formats agree with each other."""

from __future__ import annotations

import csv
import io
import math

from kdtui.results.stats import GroupRow, _fmt, mean_and_mark, selected_on_note, summarize

EXPORT_HEAD = (
    "group",
    "teacher → student",
    "loss",
    "n",
    "best acc (mean ± std)",
    "min",
    "max",
    "last acc (mean ± std)",
    "best acc per seed",
    "note",
)


def export_cells(r: GroupRow, digits: int = 2, missing: str = "–") -> list[str]:
    """One group as the cells of ``EXPORT_HEAD``: every text export formats its numbers here."""
    b, last = summarize(r, "best", digits, missing), mean_and_mark(r, "last", digits, missing)
    done = sorted(r.best_by_seed.items())
    # Seeds 0..n-1 read by position; any other set names each seed, so a failed or
    # cancelled seed left out cannot shift the others.
    named = [s for s, _ in done] != list(range(len(done)))
    places = r.digits(digits)
    seeds = ", ".join(
        (f"s{s}=" if named else "") + (_fmt(v, places, missing) if math.isfinite(v) else missing)
        for s, v in done
    )
    return [
        r.name,
        r.label,
        r.loss,
        str(r.n),
        b.marked_mean,
        b.min,
        b.max,
        "".join(last),
        seeds or missing,
        r.status_note(progress=True),  # the export shows best and last: what either leaves out
    ]


def markdown_table(rows: list[GroupRow], digits: int = 2) -> str:
    """The table a researcher pastes into notes: mean ± std over seeds, best and last, and
    each seed's best accuracy."""
    lines = ["| " + " | ".join(EXPORT_HEAD) + " |", "|" + "---|" * len(EXPORT_HEAD)]
    for r in rows:
        cells = [c.replace("|", "\\|") for c in export_cells(r, digits)]
        lines.append("| " + " | ".join(cells) + " |")
    if note := selected_on_note(rows):  # a paper must not call a test-chosen best clean
        lines += ["", note.replace("*", "\\*").replace("_", "\\_")]
    return "\n".join(lines) + "\n"


def csv_table(rows: list[GroupRow], digits: int = 4) -> str:
    """The table for a spreadsheet: the same cells, mean and std in separate columns."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        [
            "group",
            "group_key",
            "teacher_student",
            "loss",
            "n",
            "best_mean",
            "best_std",
            "best_min",
            "best_max",
            "last_mean",
            "last_std",
            "best_per_seed",
            "note",
            "best_selected_on",  # val or test, as the table's JSON: a column, not a comment
        ]  # line, which csv.DictReader and pandas would read as one more group
    )
    for r in rows:
        name, label, loss, n, _, lo, hi, _, seeds, note = export_cells(r, digits, missing="")
        b, last = r.best, r.last
        places = r.digits(digits)
        mean_std = [_fmt(v, places, "") for v in (b.mean, b.std)]
        last_mean_std = [_fmt(v, places, "") for v in (last.mean, last.std)]
        writer.writerow(
            [name, r.group_key, label, loss, n, *mean_std, lo, hi, *last_mean_std, seeds, note]
            + [r.best_selected_on or ""]
        )
    return buf.getvalue()


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "|": r"\textbar{}",
    "±": r"$\pm$",
    "→": r"$\rightarrow$",
    "×": r"$\times$",
    "λ": r"$\lambda$",
    "α": r"$\alpha$",
    "Δ": r"$\Delta$",
    "·": r"$\cdot$",
    "−": "$-$",
    "–": "--",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def latex_table(rows: list[GroupRow], digits: int = 2) -> str:
    """A booktabs ``tabular`` for a paper, with the same cells as the markdown table."""
    cols = "lllr" + "l" * (len(EXPORT_HEAD) - 4)
    lines = [
        rf"\begin{{tabular}}{{{cols}}}",
        r"\toprule",
        " & ".join(latex_escape(h) for h in EXPORT_HEAD) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(latex_escape(c) for c in export_cells(r, digits)) + r" \\" for r in rows]
    lines.append(r"\bottomrule")
    if note := selected_on_note(rows):
        lines.append(
            rf"\multicolumn{{{len(EXPORT_HEAD)}}}{{l}}{{\footnotesize {latex_escape(note)}}} \\"
        )
    lines.append(r"\end{tabular}")
    return "\n".join(lines) + "\n"
