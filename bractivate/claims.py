"""The paper's claims, tested on the workflow's outputs (docs/method.md#claims).

Each claim is a set of per-trial effects, paired by trial and oriented so that a positive value
is what the paper claims; :func:`one_sided_test` tests one set against 0 and :func:`decide`
turns one or more such tests into a verdict by the decision rule of docs/method.md#claims,
which was fixed before any claims run. The claim builders read only the loaders' frames of
:mod:`bractivate.report.loaders`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from bractivate.outputs import BRACTIVATE, CLAIMS_TABLE, CONTROL
from bractivate.report.formatting import MISSING
from bractivate.report.loaders import (load_ablation_metrics, load_baseline_metrics, load_search_results,
                                       load_train_metrics)
from bractivate.report.render import ReportTable, write_report_table

ALPHA = 0.05
MIN_TRIALS = 3
SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
VERDICTS = (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE)
# Minimal relevant effects (docs/method.md#claims): Dice differences, log ratios, "far fewer".
DICE_EFFECT = 0.01
RATIO_EFFECT = math.log(1.1)
FAR_FEWER = math.log(10.0)
# Non-inferiority margin of "similar" / "close" Dice.
DICE_MARGIN = 0.05
COLUMNS = ["claim", "dataset", "paper", "measured", "n", "test", "p_value", "verdict"]

PAPER = {
    "C1a": "activity-guided mutation finds better genomes (§1, §6); no random-search control",
    "C1b": "activity-guided mutation finds better genomes (§1, §6); no random-search control",
    "C2": "ablating the most active block's dendrites lowers Dice (§5.3, Fig. 6); no control block",
    "C3": "the ablated architecture's Dice is significantly lower (§5.3, Fig. 6)",
    "C4": "deeper searches (depth 5-10, 7-10) give a lower Dice:time (§5.2, Fig. 5)",
    "C5": "ELS selects a smaller model at the level of BCL's (appendix A.3, Fig. 9; lungs, 3 trials)",
    "C6": "Bractivate 0.942 / 0.929 / 0.878 Dice with 3.1e4-4.8e5 params; best baselines "
          "0.954 / 0.937 / 0.841 with 9.0e6-3.2e7 (Table 2, Fig. 7)",
}


@dataclass(frozen=True)
class PartTest:
    """A one-sided one-sample t test of per-trial ``effects`` against 0, with the decision of
    docs/method.md#claims for the minimal relevant effect ``minimal``."""

    label: str
    effects: tuple[float, ...]
    minimal: float
    log_ratio: bool = False  # effects are ln ratios: also shown as a factor

    @property
    def n(self) -> int:
        return len(self.effects)

    @property
    def mean(self) -> float:
        return float(np.mean(self.effects)) if self.n else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation; exactly 0 where every effect is equal (NumPy's sum leaves
        ~1e-17 for three equal floats, which would make t astronomically large, not infinite)."""
        if self.n < 2:
            return math.nan
        return 0.0 if np.ptp(self.effects) == 0 else float(np.std(self.effects, ddof=1))

    @property
    def p(self) -> float:
        """P(T_{n-1} >= t) for H1: mean effect > 0; 0 or 1 where every effect is equal."""
        from scipy.stats import t as student

        if self.n < 2:
            return math.nan
        if self.std == 0:
            return 0.0 if self.mean > 0 else 1.0
        return float(student.sf(self.mean / (self.std / math.sqrt(self.n)), self.n - 1))

    @property
    def upper(self) -> float:
        """The upper one-sided 95 % confidence bound of the mean effect."""
        from scipy.stats import t as student

        if self.n < 2:
            return math.nan
        return self.mean + float(student.ppf(1 - ALPHA, self.n - 1)) * self.std / math.sqrt(self.n)

    @property
    def d_z(self) -> float:
        """Cohen's d_z, the mean effect in units of its standard deviation."""
        if self.n < 2 or self.std == 0:
            return math.copysign(math.inf, self.mean) if self.n > 1 and self.mean else math.nan
        return self.mean / self.std

    @property
    def verdict(self) -> str:
        if self.n < MIN_TRIALS:
            return INCONCLUSIVE
        if self.p < ALPHA and self.mean >= self.minimal:
            return SUPPORTED
        if self.mean <= 0 or self.upper < self.minimal:
            return NOT_SUPPORTED
        return INCONCLUSIVE

    def measured(self) -> str:
        if not self.n:
            return f"{self.label}: no trials"
        spread = f"{self.std:.3f}" if math.isfinite(self.std) else MISSING
        text = f"{self.label} {self.mean:+.3f} ± {spread}"
        return f"{text} (×{math.exp(self.mean):.2f})" if self.log_ratio and self.n else text


def one_sided_test(effects: Iterable[float], minimal: float, label: str = "effect",
                   log_ratio: bool = False) -> PartTest:
    """The test of one claim part; ``effects`` per trial, positive as the paper claims."""
    values = tuple(float(e) for e in effects)
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{label}: effects must be finite, found {values}")
    return PartTest(label, values, minimal, log_ratio)


def decide(parts: list[PartTest]) -> tuple[str, float]:
    """A claim's verdict and p value from its parts: supported if every part is, not supported
    if any part is, inconclusive otherwise; p is the largest of the parts' (intersection-union)."""
    verdicts = [part.verdict for part in parts]
    if all(v == SUPPORTED for v in verdicts):
        verdict = SUPPORTED
    elif NOT_SUPPORTED in verdicts:
        verdict = NOT_SUPPORTED
    else:
        verdict = INCONCLUSIVE
    ps = [part.p for part in parts]
    return verdict, (math.nan if any(math.isnan(p) for p in ps) else max(ps))


def claim_row(claim: str, dataset: str, parts: list[PartTest], note: str = "") -> dict:
    """One row of the claims table."""
    verdict, p = decide(parts)
    n = min(part.n for part in parts)
    effect_sizes = ", ".join(f"{part.d_z:.2f}" for part in parts)
    test = (f"one-sided paired t, n={n}, d_z={effect_sizes}" if len(parts) == 1 else
            f"intersection-union of {len(parts)} one-sided paired t, n={n}, d_z={effect_sizes}")
    measured = "; ".join(part.measured() for part in parts) + (f"; {note}" if note else "")
    return {"claim": claim, "dataset": dataset, "paper": PAPER[claim], "measured": measured, "n": n,
            "test": test, "p_value": p, "verdict": verdict}


# ---------------------------------------------------------------------------- claim builders


def _paired(frame: pd.DataFrame, column: str, first, second, key: str = "experiment") -> pd.DataFrame:
    """``column`` of ``first`` and ``second`` (values of ``key``) side by side per data set and
    trial, only where both have the trial."""
    a = frame.loc[frame[key] == first, ["dataset", "trial", column]]
    b = frame.loc[frame[key] == second, ["dataset", "trial", column]]
    return a.merge(b, on=["dataset", "trial"], suffixes=("_a", "_b"), validate="one_to_one")


def _log_ratio(numerator: pd.Series, denominator: pd.Series, what: str) -> np.ndarray:
    num, den = numerator.to_numpy(float), denominator.to_numpy(float)
    if not (np.all(num > 0) and np.all(den > 0)):
        raise ValueError(f"{what}: a ratio needs positive values, found {num} / {den}")
    return np.log(num / den)


def search_claims(searches: pd.DataFrame, train: pd.DataFrame, dataset: str) -> list[dict]:
    """C1a (best search score) and C1b (test Dice) of ``main`` against ``random``."""
    rows = []
    scores = _paired(searches[searches["dataset"] == dataset], "search_score", CONTROL, BRACTIVATE)
    genomes = _paired(searches[searches["dataset"] == dataset], "genome_hash", BRACTIVATE, CONTROL)
    same = int((genomes["genome_hash_a"] == genomes["genome_hash_b"]).sum())
    note = f"same best genome in {same} of {len(genomes)} trials"
    if len(scores):
        part = one_sided_test(_log_ratio(scores["search_score_a"], scores["search_score_b"], "C1a"),
                              RATIO_EFFECT, "ln(score random / main)", log_ratio=True)
        rows.append(claim_row("C1a", dataset, [part], note))
    dice = _paired(train[train["dataset"] == dataset], "test_dice", BRACTIVATE, CONTROL)
    if len(dice):
        part = one_sided_test(dice["test_dice_a"] - dice["test_dice_b"], DICE_EFFECT, "Dice main − random")
        rows.append(claim_row("C1b", dataset, [part], note))
    return rows


def ablation_claims(ablation: pd.DataFrame, dataset: str) -> list[dict]:
    """C2 (most active block against the control block, zeroed) and C3 (retrained)."""
    rows = []
    frame = ablation[ablation["dataset"] == dataset]
    if not len(frame):
        return rows
    if "control_zeroed_dice" in frame:
        controlled = frame[frame["control_zeroed_dice"].notna()]
        effects = controlled["control_zeroed_dice"].astype(float) - controlled["zeroed_dice"]
        missing = len(frame) - len(controlled)
        note = f"{missing} trial(s) without a control block" if missing else ""
        rows.append(claim_row("C2", dataset, [one_sided_test(
            effects, DICE_EFFECT, "Dice drop most active − control (zeroed)")], note))
    rows.append(claim_row("C3", dataset, [one_sided_test(
        frame["intact_dice"] - frame["retrained_dice"], DICE_EFFECT, "Dice intact − retrained")]))
    return rows


def depth_claim(train: pd.DataFrame, dataset: str) -> list[dict]:
    """C4: Dice:time of ``main`` against each deeper search. A trial in which either model's
    test Dice is 0 has no log ratio and is left out of that part's n, and said so."""
    frame = train[train["dataset"] == dataset].assign(
        dice_time=lambda f: f["test_dice"] / f["seconds_per_epoch"])
    parts, notes = [], []
    for deeper in ("deep5", "deep7"):
        pairs = _paired(frame, "dice_time", BRACTIVATE, deeper)
        if not len(pairs):
            return []
        defined = pairs[(pairs["dice_time_a"] > 0) & (pairs["dice_time_b"] > 0)]
        if len(defined) < len(pairs):
            notes.append(f"{len(pairs) - len(defined)} trial(s) with a test Dice of 0 left out of main / {deeper}")
        parts.append(one_sided_test(_log_ratio(defined["dice_time_a"], defined["dice_time_b"], "C4"),
                                    RATIO_EFFECT, f"ln(Dice:time main / {deeper})", log_ratio=True))
    return [claim_row("C4", dataset, parts, "; ".join(notes))]


def loss_claim(train: pd.DataFrame, dataset: str) -> list[dict]:
    """C5: ELS (``main``) selects fewer parameters than BCL (``bcl``) at a similar Dice."""
    frame = train[train["dataset"] == dataset]
    params = _paired(frame, "params", "bcl", BRACTIVATE)
    dice = _paired(frame, "test_dice", BRACTIVATE, "bcl")
    if not len(params):
        return []
    return [claim_row("C5", dataset, [
        one_sided_test(_log_ratio(params["params_a"], params["params_b"], "C5"), RATIO_EFFECT,
                       "ln(params bcl / main)", log_ratio=True),
        one_sided_test(dice["test_dice_a"] - dice["test_dice_b"] + DICE_MARGIN, 0.0,
                       f"Dice main − bcl + {DICE_MARGIN}"),
    ])]


def baseline_claim(train: pd.DataFrame, baselines: pd.DataFrame, dataset: str) -> list[dict]:
    """C6: Bractivate against the best baseline (highest mean test Dice) of the data set."""
    ours = train[(train["dataset"] == dataset) & (train["experiment"] == BRACTIVATE)]
    theirs = baselines[baselines["dataset"] == dataset]
    if not len(ours) or not len(theirs):
        return []
    best = theirs.groupby("model")["test_dice"].mean().idxmax()
    frame = pd.concat([ours.assign(source=BRACTIVATE), theirs[theirs["model"] == best].assign(source=best)])
    dice = _paired(frame, "test_dice", BRACTIVATE, best, key="source")
    params = _paired(frame, "params", best, BRACTIVATE, key="source")
    return [claim_row("C6", dataset, [
        one_sided_test(dice["test_dice_a"] - dice["test_dice_b"] + DICE_MARGIN, 0.0,
                       f"Dice main − {best} + {DICE_MARGIN}"),
        one_sided_test(_log_ratio(params["params_a"], params["params_b"], "C6"), FAR_FEWER,
                       f"ln(params {best} / main)", log_ratio=True),
    ], f"best baseline {best}")]


def claims_frame(*, train: pd.DataFrame, searches: pd.DataFrame | None = None,
                 ablation: pd.DataFrame | None = None, baselines: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every claim the given frames can test, one row per claim and data set, in claim order."""
    builders: list[Callable[[str], list[dict]]] = [lambda d: depth_claim(train, d), lambda d: loss_claim(train, d)]
    if searches is not None:
        builders.insert(0, lambda d: search_claims(searches, train, d))
    if ablation is not None:
        builders.insert(1, lambda d: ablation_claims(ablation, d))
    if baselines is not None:
        builders.append(lambda d: baseline_claim(train, baselines, d))
    rows = [row for dataset in pd.unique(train["dataset"]) for build in builders for row in build(dataset)]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.sort_values("claim", kind="stable").reset_index(drop=True)


def claims_table(frame: pd.DataFrame) -> ReportTable:
    display = frame.assign(p_value=[f"{p:.3g}" if math.isfinite(p) else MISSING for p in frame["p_value"]],
                           n=frame["n"].astype(str))
    display.columns = ["Claim", "Data set", "Paper", "Measured (mean ± std over trials)", "n", "Test",
                       "p", "Verdict"]
    return ReportTable(CLAIMS_TABLE, "Claims", "The paper's claims tested on this run: per-trial "
                       "effects paired by trial (positive = as the paper says), a one-sided paired t "
                       "test and the decision rule of docs/method.md#claims (α = 0.05, at least 3 "
                       "trials, a minimal relevant effect).", frame, display)


def claims_job(*, train, searches, ablation, baselines, outputs) -> pd.DataFrame:
    """Rule ``claims``: load the stage outputs, test every claim they allow, write the table to
    ``outputs`` (``claims``, ``claims_md``, ``claims_tex``, ``claims_html``)."""
    frame = claims_frame(
        train=load_train_metrics(train),
        searches=load_search_results(searches) if searches else None,
        ablation=_with_control(load_ablation_metrics(ablation)) if ablation else None,
        baselines=load_baseline_metrics(baselines) if baselines else None,
    )
    write_report_table(claims_table(frame), outputs["claims"], outputs["claims_md"], outputs["claims_tex"],
                       outputs["claims_html"])
    return frame


def _with_control(ablation: pd.DataFrame) -> pd.DataFrame:
    """Ablation metrics written before the control block existed have no control columns."""
    if "control_zeroed_dice" not in ablation:
        raise ValueError("ablation metrics lack 'control_zeroed_dice' (written before the ablation had a "
                         "control block): rerun the ablation rule")
    return ablation

