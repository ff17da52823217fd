"""Rendering: a :class:`ReportTable` as TSV (tidy), Markdown, LaTeX and HTML (display), each
file written atomically."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import pandas as pd

from bractivate.io import write_table, write_text


@dataclass
class ReportTable:
    """A table twice: ``tidy`` (one row per group, numeric columns and the cell text) for the
    TSV, ``display`` (the paper's layout, text cells) for Markdown and LaTeX."""

    name: str
    title: str
    caption: str
    tidy: pd.DataFrame
    display: pd.DataFrame


def to_markdown(table: ReportTable) -> str:
    """A GitHub-flavoured Markdown table under a caption line."""
    display = table.display.astype(str)
    header = list(display.columns)
    lines = [f"**{table.title}.** {table.caption}", "",
             "| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if _numeric(display[c]) else ":---" for c in header) + "|"]
    lines += ["| " + " | ".join(v.replace("|", r"\|") for v in row) + " |"
              for row in display.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _numeric(column: pd.Series) -> bool:
    """Whether a display column holds numbers (right-aligned) rather than names."""
    return bool(column.str.match(r"^[-+–]?\d|^–$").all())


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}"}
_LATEX_TEXT = {"±": r"$\pm$", "–": "--", "−": "$-$"}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters; ± as ``$\\pm$``, the en dash as ``--``, a minus
    sign before a number as ``$-$``."""
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))
    for char, replacement in _LATEX_TEXT.items():
        out = out.replace(char, replacement)
    return re.sub(r"(?<![\w.-])-(?=\d)", "$-$", out)  # a minus sign, not a hyphen


def to_latex(table: ReportTable) -> str:
    """A ``table`` float with a booktabs ``tabular`` (needs ``\\usepackage{booktabs}``)."""
    display = table.display.astype(str)
    spec = "".join("r" if _numeric(display[c]) else "l" for c in display.columns)
    lines = [r"\begin{table}[ht]", r"\centering",
             rf"\caption{{{latex_escape(table.caption)}}}", rf"\label{{tab:{table.name}}}",
             rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(latex_escape(c) for c in display.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_escape(v) for v in row) + r" \\" for row in display.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_html(display: pd.DataFrame, title: str, caption: str) -> str:
    """A standalone HTML page of ``display`` under its caption: what the Snakemake report
    shows for a table (it only offers TSV files for download)."""
    import html

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in display.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>\n"
                   for row in display.astype(str).itertuples(index=False))
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            "</title><style>body{font-family:sans-serif;font-size:14px;background:#fff;color:#111}"
            "table{border-collapse:collapse}th,td{padding:2px 8px;border-bottom:1px solid #ccc;"
            "text-align:left}caption{text-align:left;padding-bottom:6px}</style></head><body>\n"
            f"<table><caption><b>{html.escape(title)}.</b> {html.escape(caption)}</caption>\n"
            f"<thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>\n</body></html>\n")


def write_formats(table: ReportTable, paths: Mapping[str, str | Path]) -> None:
    """Write ``table`` to ``paths`` (format -> path): ``tsv`` the tidy frame, ``md``, ``tex``
    and ``html`` the display, each atomically."""
    unknown = sorted(set(paths) - set(FORMATS))
    if unknown:
        raise ValueError(f"table {table.name}: formats {unknown} unknown; expected some of {list(FORMATS)}")
    for fmt, path in paths.items():
        if fmt == "tsv":
            write_table(path, table.tidy)
        else:
            write_text(path, FORMATS[fmt](table))


def write_report_table(table: ReportTable, tsv, md, tex, html=None) -> None:
    """Write ``table`` as TSV (tidy), Markdown, LaTeX and, where ``html`` is given, HTML
    (display), each atomically."""
    paths = {"tsv": tsv, "md": md, "tex": tex}
    write_formats(table, paths if html is None else {**paths, "html": html})


# How each display format is written (the TSV is the tidy frame as it is).
FORMATS = {"tsv": None, "md": to_markdown, "tex": to_latex,
           "html": lambda table: to_html(table.display, table.title, table.caption)}
