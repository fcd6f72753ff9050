"""Exercise checks for the course in ``notebooks/lessons/``, and the one helper every lesson starts with.

A lesson's exercise cell holds a placeholder (``answer = ...``) that the learner replaces; the cell after it
calls one of the ``check_*`` functions below. A check computes the expected value with the package itself
(never a number typed into the lesson), compares, and returns a :class:`Feedback`: ``Correct`` or what is
wrong, with a hint for the usual mistakes (a log hazard ratio instead of a hazard ratio, percentage points
instead of a share, the naive estimate instead of the time-varying one...). Feedback never prints the
expected value, so a learner cannot read the answer off a wrong attempt.

Numbers are accepted when they match to the precision a learner would copy from a printed result (a hazard ratio
to two decimals, a C-index to three). ``bool(feedback)`` is True when the answer is right, so a test or a grading
script can use the same checks.

>>> ds, truth = lesson_world(seed=100, n_accounts=3000)      # a validated synthetic world, in a temp folder
>>> check_hazard_ratio(0.5, ds, method="landmark", landmark_days=365)
✘ Not yet: ...
"""
from __future__ import annotations

import atexit
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np
import pandas as pd

from . import analyses as A
from . import health
from .maturity import assess
from .metrics.catalog import load_catalog
from .metrics.definition import VERDICTS, MetricDefinitionError, classify_metric
from .world import WorldConfig, generate

if TYPE_CHECKING:
    from .data import Dataset

__all__ = [
    "Feedback", "lesson_world", "EXERCISE_METRICS", "exercise_metrics", "OWNER_METRICS",
    "check_owners", "check_gap", "check_verdict", "check_verdicts", "check_goldilocks", "check_hazard_ratio",
    "check_immortal_months", "check_partial_value", "check_goodhart", "check_goodhart_growth",
    "check_maturity_level", "check_c_index", "check_events", "check_sample_size",
]


# ---------------------------------------------------------------------------------------------------------
# feedback
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Feedback:
    """The verdict on one answer: ``ok`` and a message for the learner (shown as the cell's output)."""

    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return self.message

    __str__ = __repr__


def _correct(extra: str = "") -> Feedback:
    return Feedback(True, "✔ Correct." + (f" {extra}" if extra else ""))


def _wrong(why: str) -> Feedback:
    return Feedback(False, f"✘ Not yet: {why}")


_NOT_ANSWERED = Feedback(False, "✎ Not answered yet: replace the `...` with your answer and run the cell again.")


def _unanswered(answer: Any) -> bool:
    return answer is Ellipsis or answer is None


def _number(answer: Any) -> float | None:
    """The answer as a float, or None when it is not a single number."""
    if isinstance(answer, bool):
        return None
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _close(a: float, b: float, rel: float, abs_: float) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def _check_number(answer: Any, expected: float, *, what: str, rel: float = 0.01, abs_: float = 0.0,
                  mistakes: list[tuple] = (), fallback: str | None = None) -> Feedback:
    """Compare a numeric answer; known wrong values get their own hint, checked in order.

    ``mistakes`` holds ``(value, hint)`` or ``(value, hint, abs_tolerance)`` (e.g. a percentage read as a share
    needs a tolerance 100 times larger). No hint says whether an answer is too high or too low: that would let a
    learner home in on the number without doing the analysis."""
    if _unanswered(answer):
        return _NOT_ANSWERED
    value = _number(answer)
    if value is None:
        return _wrong(f"the answer should be a single number ({what}), not {type(answer).__name__} {answer!r}.")
    if _close(value, expected, rel, abs_):
        return _correct()
    for candidate, hint, *tol in mistakes:
        if candidate is not None and math.isfinite(candidate) and _close(value, candidate, rel, tol[0] if tol else abs_):
            return _wrong(hint)
    return _wrong(fallback or f"that is not {what} the package computes. Check the function, its arguments and "
                              "which number of its result you took.")


# ---------------------------------------------------------------------------------------------------------
# the lesson's world
# ---------------------------------------------------------------------------------------------------------
def lesson_world(seed: int, n_accounts: int = 3000, segment: str | None = None, *, fmt: str = "parquet",
                 **config: Any) -> tuple["Dataset", dict]:
    """A synthetic world for one lesson: simulate, write to a fresh temporary folder, load and validate.

    The same calls an analyst makes on real data (:func:`csresearch.world.generate`, then
    :func:`csresearch.data.load`), so the lesson reads its data through the data contract. ``segment``
    restricts the dataset to one segment (``None``: all segments). Extra keyword arguments go to
    :class:`~csresearch.world.WorldConfig`. The folder (``ds.path``) is removed when the Python process ends.

    Returns the dataset and the world's truth (the planted effects, as in ``truth.json``).
    """
    from .data import load

    folder = Path(tempfile.mkdtemp(prefix="csresearch-lesson-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    truth = generate(WorldConfig(n_accounts=int(n_accounts), seed=int(seed), **config), folder, fmt=fmt,
                     overwrite=True)
    ds = load(folder)
    if segment is not None:
        ds = ds.for_segment(segment)
    return ds, truth


def say(text: str) -> None:
    """Show ``text`` (Markdown) as output of the running cell.

    For lesson prose that states a number or a direction: the lesson computes the sentence from its data, so
    it stays true for every seed and segment its parameters allow."""
    from IPython.display import Markdown, display

    display(Markdown(text))


# ---------------------------------------------------------------------------------------------------------
# expected values, computed once per dataset
# ---------------------------------------------------------------------------------------------------------
_CACHE: dict[tuple, Any] = {}


def _cached(ds: "Dataset", key: tuple, compute: Callable[[], Any]) -> Any:
    """``compute()`` once per dataset (its file fingerprint and the accounts it holds) and key."""
    ident = (ds.fingerprint(), tuple(ds.segments), len(ds.accounts), key)
    if ident not in _CACHE:
        if len(_CACHE) > 64:
            _CACHE.clear()
        _CACHE[ident] = compute()
    return _CACHE[ident]


# ---------------------------------------------------------------------------------------------------------
# lesson 1: whose success is it?
# ---------------------------------------------------------------------------------------------------------
#: Metrics of the bundled catalog that come up in the two stories of lesson 1 (whose success does each describe?).
OWNER_METRICS = ("signal_on_the_wire", "tv_outage_days", "diagrams_drawn", "process_cycle_time_days", "logins",
                 "nps", "renewal_rate_pct", "qualified_leads")


def check_owners(answers: Mapping[str, str], catalog: str | Path | None = None) -> Feedback:
    """``answers`` maps metric names to ``"vendor"`` or ``"customer"``; the catalog's ``owner`` is the key."""
    if _unanswered(answers):
        return _NOT_ANSWERED
    if not isinstance(answers, Mapping):
        return _wrong("give a dict: {metric name: 'vendor' or 'customer'}.")
    cat = load_catalog(catalog)
    owners = dict(zip(cat["name"], cat["owner"]))
    unknown = [m for m in answers if m not in owners]
    if unknown:
        return _wrong(f"not in the metric catalog: {', '.join(map(str, unknown))}.")
    blank = [m for m, a in answers.items() if _unanswered(a)]
    if answers and len(blank) == len(answers):
        return _NOT_ANSWERED
    bad = [m for m, a in answers.items() if not _unanswered(a) and a not in ("vendor", "customer")]
    if bad:
        return _wrong(f"answer 'vendor' or 'customer' for {', '.join(bad)}.")
    missing = [m for m in OWNER_METRICS if m not in answers]
    wrong = [m for m, a in answers.items() if not _unanswered(a) and a != owners[m]]
    if wrong:
        return _wrong(f"{len(wrong)} of {len(answers) - len(blank)} answered are not right: {', '.join(wrong)}. "
                      "Ask of each: if this number improves, whose goal is met, the vendor's or the customer's?")
    if blank or missing:
        todo = blank + missing
        return Feedback(False, f"✔ So far so good, but still to answer: {', '.join(todo)}.")
    return _correct("Vendor numbers describe the product being used; customer numbers describe the result "
                    "the customer bought it for.")


def check_gap(answer: Any, ds: "Dataset", **gap_kwargs: Any) -> Feedback:
    """Churn of green-usage accounts that did not reach their goals minus that of green-usage accounts that did
    (a share, e.g. 0.05 for 5 points), from :func:`csresearch.metrics.vendor_customer_gap`."""
    from .metrics import vendor_customer_gap

    table, summary = _cached(ds, ("gap", tuple(sorted(gap_kwargs.items()))),
                             lambda: vendor_customer_gap(ds, **gap_kwargs))
    gap = summary["gap"]
    expected = gap["green_not_attained_minus_green_attained"]
    if expected is None or not math.isfinite(expected):
        return Feedback(False, "ℹ In this dataset one of the two cells is too small to compare (suppressed); "
                               "try another segment or a larger world.")
    rates = table[table["segment"] == "all"]["churn_rate"].tolist()
    mistakes = [(100 * expected, "that looks like percentage points; give the difference as a share "
                                 "(5 points = 0.05).", 0.5),
                (-expected, "right size, wrong sign: subtract the churn of green accounts that reached their goals "
                            "from the churn of green accounts that did not."),
                (gap["green_not_attained_minus_low_attained"], "that compares with low-usage accounts that reached "
                 "their goals; compare the two green-usage cells instead.")]
    mistakes += [(r, "that is the churn rate of a single cell; give the difference between two cells.") for r in rates]
    return _check_number(answer, expected, what="the churn difference", rel=0.0, abs_=0.005, mistakes=mistakes)


# ---------------------------------------------------------------------------------------------------------
# lesson 2: Papa Bear, Mama Bear, Goldilocks
# ---------------------------------------------------------------------------------------------------------
#: New metrics (not in the bundled catalog) for the learner to classify, defined as a catalog entry would be.
EXERCISE_METRICS: dict[str, dict[str, Any]] = {
    "officer_response_minutes": {
        "description": "Median minutes from a gunshot alert to the first officer on the scene.",
        "owner": "customer", "level": "outcome", "countable": True, "unit": "minutes", "function": "public_safety"},
    "alerts_reviewed": {
        "description": "Alerts the dispatch team opens and reviews in the product each week.",
        "owner": "customer", "level": "activity", "countable": True, "unit": "alerts per week",
        "function": "public_safety"},
    "city_crime_rate": {
        "description": "Recorded crimes per 1,000 residents across the whole city, per year.",
        "owner": "customer", "level": "business_result", "countable": True, "unit": "crimes per 1,000 residents",
        "function": "public_safety"},
    "residents_feel_safe": {
        "description": "Whether people living near the monitored streets feel safer than before.",
        "owner": "customer", "level": "outcome", "countable": False, "unit": "", "function": "public_safety"},
    "sensor_uptime_pct": {
        "description": "Share of hours in which the vendor's acoustic sensors were online and reporting.",
        "owner": "vendor", "level": "output", "countable": True, "unit": "percent", "function": "product"},
    "days_to_close_books": {
        "description": "Working days the finance team needs to close the month's accounts.",
        "owner": "customer", "level": "outcome", "countable": True, "unit": "days", "function": "finance"},
}

_RULE_HINTS = {
    "vendor_owned": "look first at who owns the number.",
    "business_result": "look at its level: how far is it from what the product does?",
    "activity_or_output": "look at its level: is it a result the customer is after, or work done with the product?",
    "countable_outcome": "it is a customer-owned outcome; can it be counted?",
    "uncountable_outcome": "it is a customer-owned outcome; can it be counted as stated?",
}


def exercise_metrics() -> pd.DataFrame:
    """The exercise metrics as a catalog-shaped table (without verdicts)."""
    return pd.DataFrame([{"name": n, **d} for n, d in EXERCISE_METRICS.items()])[
        ["name", "owner", "level", "countable", "unit", "description"]]


def _verdict_feedback(metric: str, answer: Any) -> tuple[bool | None, str]:
    if metric not in EXERCISE_METRICS:
        return False, f"{metric}: not one of the exercise metrics ({', '.join(EXERCISE_METRICS)})"
    if _unanswered(answer):
        return None, f"{metric}: not answered yet"
    if answer not in VERDICTS:
        return False, f"{metric}: answer one of {', '.join(VERDICTS)}, not {answer!r}"
    result = classify_metric(metric, **EXERCISE_METRICS[metric])
    if answer == result["verdict"]:
        return True, f"{metric}: correct"
    return False, f"{metric}: not {answer}; {_RULE_HINTS[result['rule']]}"


def check_verdict(metric: str, answer: Any) -> Feedback:
    """One exercise metric (:data:`EXERCISE_METRICS`): is ``answer`` (papa, mama, goldilocks, needs_proxy) its verdict?"""
    ok, text = _verdict_feedback(metric, answer)
    if ok is None:
        return _NOT_ANSWERED
    return _correct() if ok else _wrong(text + ".")


def check_verdicts(answers: Mapping[str, Any]) -> Feedback:
    """Several exercise metrics at once: ``{metric: verdict}``; one line per metric that is not right yet."""
    if _unanswered(answers):
        return _NOT_ANSWERED
    if not isinstance(answers, Mapping):
        return _wrong("give a dict: {metric name: verdict}.")
    results = [_verdict_feedback(m, a) for m, a in answers.items()]
    results += [(None, f"{m}: not answered yet") for m in EXERCISE_METRICS if m not in answers]
    n_ok = sum(ok is True for ok, _ in results)
    if n_ok == len(results):
        return _correct(f"All {n_ok} verdicts match the rules.")
    lines = [text for ok, text in results if ok is not True]
    return Feedback(False, f"{'✔' if n_ok else '✘'} {n_ok} of {len(EXERCISE_METRICS)} right. Still to fix:\n  "
                           + "\n  ".join(lines))


def check_goldilocks(definition: Mapping[str, Any], function: str | None = None) -> Feedback:
    """A learner's own metric (keyword arguments of :func:`classify_metric`): is it Goldilocks, new, and (when
    ``function`` is given) in that business function?"""
    if _unanswered(definition) or not isinstance(definition, Mapping):
        return _NOT_ANSWERED if _unanswered(definition) else _wrong("give a dict with name, owner, level, countable, unit.")
    if any(_unanswered(v) for v in definition.values()):
        return _NOT_ANSWERED
    missing = [k for k in ("name", "owner", "level", "countable") if k not in definition]
    if missing:
        return _wrong(f"the definition needs {', '.join(missing)}.")
    try:
        result = classify_metric(**definition)
    except MetricDefinitionError as exc:
        return _wrong("classify_metric does not accept it: " + "; ".join(exc.problems))
    except TypeError as exc:
        return _wrong(f"unexpected field: {exc}.")
    if result["name"] in set(load_catalog()["name"]):
        return _wrong(f"{result['name']} is already in the bundled catalog; invent a metric of your own.")
    if result["verdict"] != "goldilocks":
        return _wrong(f"classify_metric says: {result['rationale']}")
    if not result["unit"]:
        return _wrong("a Goldilocks metric is counted, so give its unit.")
    if function is not None and result["function"] != function:
        return _wrong(f"it is Goldilocks, but set function={function!r}: the exercise asks for a metric of that team.")
    return _correct("A countable outcome the customer's own team is after.")


# ---------------------------------------------------------------------------------------------------------
# lessons 3 and 4: hazard ratios, immortal time
# ---------------------------------------------------------------------------------------------------------
_METHODS = ("time_varying", "landmark", "naive")


def _effect(ds: "Dataset", method: str, landmark_days: float | None, lag_days: int,
            covariates: tuple[str, ...] | None) -> dict:
    cov = None if covariates is None else list(covariates)

    def compute() -> dict:
        if method == "time_varying":
            return A.time_varying_effect(ds, covariates=cov, lag_days=lag_days)[1]
        if method == "landmark":
            return A.landmark_effect(ds, landmark_days, covariates=cov, lag_days=lag_days)[1]
        return A.naive_effect(ds, covariates=cov)[1]

    return _cached(ds, ("effect", method, landmark_days, lag_days, covariates), compute)


def check_hazard_ratio(answer: Any, ds: "Dataset", *, method: str = "time_varying", landmark_days: float | None = None,
                       lag_days: int = 0, covariates: list[str] | None = None) -> Feedback:
    """The hazard ratio of full versus no attainment by ``method`` (``time_varying``, ``landmark`` at
    ``landmark_days``, or ``naive``), as :mod:`csresearch.analyses` computes it with these arguments."""
    if method not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(_METHODS)}, not {method!r}")
    if method == "landmark" and landmark_days is None:
        raise ValueError("method='landmark' needs landmark_days")
    cov = None if covariates is None else tuple(covariates)
    if _unanswered(answer):
        return _NOT_ANSWERED
    got = _effect(ds, method, landmark_days, lag_days, cov)
    expected = got["hr"]
    mistakes: list[tuple[float, str]] = [
        (got["coef"], "that is the coefficient (the log hazard ratio); the hazard ratio is exp(coef)."),
        (1 / expected, "that is the inverse: the hazard ratio compares full attainment with none, so it is below 1 "
                       "when reaching goals lowers churn."),
    ]
    if method != "naive":
        naive = _effect(ds, "naive", None, 0, cov)["hr"]
        mistakes.append((naive, "that is the naive estimate: it uses each account's final attainment as if it had "
                                "been known from the start (immortal time)."))
    if method == "landmark":
        tv = _effect(ds, "time_varying", None, lag_days, cov)["hr"]
        mistakes.append((tv, "that is the time-varying estimate; the exercise asks for the landmark analysis."))
        other = _effect(ds, "landmark", 365.0 if landmark_days != 365 else 180.0, lag_days, cov)["hr"]
        mistakes.append((other, "that is the landmark estimate at another landmark; check landmark_days."))
    if method == "time_varying" and lag_days:
        plain = _effect(ds, "time_varying", None, 0, cov)["hr"]
        mistakes.append((plain, "that is the estimate without the lag; pass lag_days."))
    if covariates is not None:
        default = _effect(ds, method, landmark_days, lag_days, None)["hr"]
        mistakes.append((default, "that is the estimate with the default covariates; pass covariates as asked."))
    mistakes += [(got["ci_low"], "that is the lower end of the confidence interval; give the point estimate."),
                 (got["ci_high"], "that is the upper end of the confidence interval; give the point estimate.")]
    return _check_number(answer, expected, what="the hazard ratio", rel=0.0, abs_=0.005, mistakes=mistakes)


def check_immortal_months(answer: Any, *, followed_months: int = 24, reached_month: int = 15) -> Feedback:
    """The scenario of lesson 4: an account followed for ``followed_months`` reached its goals in month
    ``reached_month``; the naive analysis files it as "goals reached" from day one. How many months of its
    follow-up are immortal (it could not have churned and still be counted as having reached its goals)?"""
    mistakes = [(float(followed_months), "not all of it: once the goals are reached, the account can churn like any "
                                         "other, and that risk is real."),
                (float(followed_months - reached_month), "that is the time after the goals were reached, when the account "
                                                         "was genuinely at risk as a successful one."),
                (0.0, "there is immortal time here: to be counted as successful, the account first had to survive "
                      "until its goals were reached.")]
    return _check_number(answer, float(reached_month), what="the number of immortal months", rel=0.0, abs_=0.5,
                         mistakes=mistakes, fallback="ask during which months the account could not have churned and "
                                                     "still be counted as one that reached its goals.")


# ---------------------------------------------------------------------------------------------------------
# lesson 5: partial value
# ---------------------------------------------------------------------------------------------------------
def check_partial_value(answer: Any, ds: "Dataset", *, at: float = 0.5, **dose_kwargs: Any) -> Feedback:
    """The share of the full-attainment reduction in churn hazard that an account gets at attainment ``at``:
    ``(1 - HR(at)) / (1 - HR(1))`` on the spline of :func:`csresearch.analyses.dose_response`."""
    curve, info = _cached(ds, ("dose", tuple(sorted(dose_kwargs.items()))), lambda: A.dose_response(ds, **dose_kwargs))
    grid, hr = curve["attainment"].to_numpy(float), curve["hr"].to_numpy(float)
    hr_at, hr_full = float(np.interp(at, grid, hr)), float(np.interp(1.0, grid, hr))
    if hr_full >= 1:
        return Feedback(False, "ℹ In this dataset full attainment does not lower the hazard, so the share is not "
                               "defined; try another seed or segment.")
    expected = (1 - hr_at) / (1 - hr_full)
    lin = float(info["linear"]["coef"])
    mistakes = [(100 * expected, "that looks like a percentage; give a share (a half = 0.5).", 1.0),
                (hr_at, "that is the hazard ratio at that attainment; the question asks what share of the full "
                        "benefit it brings."),
                (1 - hr_at, "that is the reduction at that attainment; divide it by the reduction at full attainment."),
                ((1 - math.exp(at * lin)) / (1 - math.exp(lin)), "that is the straight-line (linear) model's answer; "
                 "use the spline curve.")]
    return _check_number(answer, expected, what="the share of the benefit", rel=0.0, abs_=0.01, mistakes=mistakes)


# ---------------------------------------------------------------------------------------------------------
# lesson 6: Goodhart
# ---------------------------------------------------------------------------------------------------------
def _goodhart(ds: "Dataset", kwargs: dict) -> pd.DataFrame:
    from .metrics import goodhart_divergence

    return _cached(ds, ("goodhart", tuple(sorted(kwargs.items()))), lambda: goodhart_divergence(ds, **kwargs)[0])


def check_goodhart(answer: Any, ds: "Dataset", **divergence_kwargs: Any) -> Feedback:
    """Which ``(segment, metric)`` pair shows a vendor metric rising while attainment does not, by
    :func:`csresearch.metrics.goodhart_divergence`? ``answer`` is a pair, a list of pairs, or ``"none"``."""
    if _unanswered(answer):
        return _NOT_ANSWERED
    table = _goodhart(ds, divergence_kwargs)
    flagged = {(r.segment, r.metric) for r in table[table["diverging"]].itertuples()}
    if isinstance(answer, str):
        given = set() if answer.strip().lower() == "none" else None
    elif isinstance(answer, tuple) and len(answer) == 2 and all(isinstance(a, str) for a in answer):
        given = {answer}
    elif isinstance(answer, (list, set)) and all(isinstance(a, tuple) and len(a) == 2 for a in answer):
        given = set(answer)
    else:
        given = None
    if given is None:
        return _wrong("give a (segment, metric) pair such as ('smb', 'reports_created'), a list of pairs, or 'none'.")
    if given == flagged:
        return _correct()
    if not flagged:
        return _wrong("in this dataset no vendor metric rises while attainment stays flat or falls; answer 'none'.")
    segments = {s for s, _ in flagged}
    right_segment = {p for p in given if p[0] in segments}
    if not given:
        return _wrong("look again: in at least one segment a vendor metric climbs while attainment does not.")
    if right_segment and not (given & flagged):
        return _wrong("right segment, but another metric: which one climbs per active user?")
    if given < flagged:
        return _wrong("part of it: there is more than one diverging pair.")
    if given & flagged:
        return _wrong("one pair too many: check the `diverging` column rather than the vendor trend alone.")
    return _wrong("not that one: look for a segment where the vendor trend is up and the attainment trend is not.")


def check_goodhart_growth(answer: Any, ds: "Dataset", *, segment: str | None = None, metric: str = "logins",
                          **divergence_kwargs: Any) -> Feedback:
    """Yearly % growth of ``metric`` (per active user) in ``segment``, from :func:`goodhart_divergence`.

    ``segment=None``: the segment where ``metric`` diverges (the one the learner found in the previous exercise)."""
    table = _goodhart(ds, divergence_kwargs)
    if segment is None:
        hits = table[table["diverging"] & (table["metric"] == metric)]
        if len(hits) != 1:
            if hits.empty:
                return Feedback(False, f"ℹ In this dataset {metric} diverges in no segment, so the question has no "
                                       "single answer; pass segment= to check the growth in one segment.")
            return Feedback(False, f"ℹ {metric} diverges in {len(hits)} segments of this dataset, so the question has "
                                   "no single answer; pass segment= to check one of them.")
        segment = hits["segment"].iloc[0]
    if _unanswered(answer):
        return _NOT_ANSWERED
    row = table[(table["segment"] == segment) & (table["metric"] == metric)]
    if row.empty:
        raise ValueError(f"no {metric!r} trend for segment {segment!r} in this dataset")
    r = row.iloc[0]
    expected = float(r["vendor_pct_per_year"])
    mistakes = [(float(r["vendor_trend"]), "that is the trend in log points per year; turn it into a percentage: "
                                           "100 * (exp(trend) - 1).", 0.0005),
                (100 * float(r["vendor_trend"]), "that is 100 times the log-point trend; the percentage is "
                                                 "100 * (exp(trend) - 1)."),
                (expected / 100, "give it in percent (22% = 22), not as a share.", 0.0005),
                (100 * float(r["attainment_trend"]), "that is the attainment trend; the question asks about the vendor "
                                                     "metric.")]
    return _check_number(answer, expected, what="the yearly growth", rel=0.01, abs_=0.05, mistakes=mistakes)


# ---------------------------------------------------------------------------------------------------------
# lesson 7: maturity
# ---------------------------------------------------------------------------------------------------------
def check_maturity_level(answer: Any, team: Mapping[str, bool]) -> Feedback:
    """The level :func:`csresearch.maturity.assess` gives the questionnaire ``team``."""
    if _unanswered(answer):
        return _NOT_ANSWERED
    expected = assess(dict(team))["level"]
    value = _number(answer)
    if value is None or value != int(value) or not 1 <= value <= 5:
        return _wrong("answer with a level from 1 to 5.")
    if value == expected:
        return _correct()
    if value > expected:
        return _wrong("too high: a level counts only when all its practices, and those of every level below, are in "
                      "place. Which practice is missing on the way up?")
    return _wrong("too low: the team has every practice of a higher level (and of the levels below it).")


def check_health_verdict(answer: Any, ds: "Dataset", metric: str, **audit_kwargs: Any) -> Feedback:
    """The verdict :func:`csresearch.health.audit` gives the usage metric ``metric`` used as a health score."""
    if _unanswered(answer):
        return _NOT_ANSWERED
    given = answer.strip().lower() if isinstance(answer, str) else None
    if given not in health.VERDICTS:
        return _wrong("answer with one of the words informative, redundant or decoration.")
    expected = _cached(ds, ("health", metric, tuple(sorted(audit_kwargs.items()))),
                       lambda: health.audit(ds, metric, **audit_kwargs)[1]["verdict"])
    if given == expected:
        return _correct()
    return _wrong({
        "informative": "informative needs two things: the score predicts churn on its own (its hazard ratio's CI "
                       "excludes 1) and it adds to raw usage (the likelihood-ratio test). Check both.",
        "redundant": "redundant means it predicts churn, but usage already says the same. Does it predict churn at all? "
                     "Look at the hazard ratio per SD and its CI.",
        "decoration": "decoration means it does not predict churn at all. Look again at the hazard ratio per SD: does "
                      "its CI exclude 1?",
    }[given])


def check_c_index(answer: Any, ds: "Dataset", *, model: str = "attainment", **uvo_kwargs: Any) -> Feedback:
    """Harrell's C of one of :func:`csresearch.analyses.usage_vs_outcome`'s models (``usage``, ``attainment``,
    ``both``), on the account-months that have a completed usage period."""
    info = _cached(ds, ("uvo", tuple(sorted(uvo_kwargs.items()))), lambda: A.usage_vs_outcome(ds, **uvo_kwargs)[1])
    c = info["c_index"]
    if model not in c:
        raise ValueError(f"model must be one of {', '.join(c)}, not {model!r}")
    expected = c[model]
    mistakes = [(1 - expected, "that is 1 - C: the score must rise with risk, so use the model's linear predictor "
                               "(covariates times coefficients), not its negative.")]
    mistakes += [(v, f"that is the C-index of the {k} model.") for k, v in c.items() if k != model]
    return _check_number(answer, expected, what="the C-index", rel=0.0, abs_=0.001, mistakes=mistakes)


# ---------------------------------------------------------------------------------------------------------
# lesson 8: study design
# ---------------------------------------------------------------------------------------------------------
def check_events(answer: Any, hazard_ratio: float, *, alpha: float = 0.05, power: float = 0.80,
                 ratio: float = 1.0) -> Feedback:
    """Churn events needed (rounded up) to detect ``hazard_ratio``, :func:`csresearch.analyses.schoenfeld_events`."""
    expected = math.ceil(A.schoenfeld_events(hazard_ratio, alpha=alpha, power=power, ratio=ratio))
    mistakes = []
    if power != 0.80:
        mistakes.append((math.ceil(A.schoenfeld_events(hazard_ratio, alpha=alpha, power=0.80, ratio=ratio)),
                         "that is the number for 80% power; pass the power the question asks for."))
    if alpha != 0.05:
        mistakes.append((math.ceil(A.schoenfeld_events(hazard_ratio, alpha=0.05, power=power, ratio=ratio)),
                         "that is the number for alpha = 0.05; pass the alpha the question asks for."))
    mistakes.append((expected / 2, "that is half of the events: the formula gives the total over both groups."))
    return _check_number(answer, expected, what="the number of events", rel=0.0, abs_=1.0, mistakes=mistakes)


def check_sample_size(answer: Any, base_churn: float, reduction: float, *, alpha: float = 0.05,
                      power: float = 0.80) -> Feedback:
    """Accounts needed in total (both arms, log-rank) to detect a relative ``reduction`` of ``base_churn``,
    :func:`csresearch.analyses.sample_size`."""
    row = A.sample_size(base_churn, [reduction], alpha=alpha, power=power).iloc[0]
    expected = float(row["n_total_logrank"])
    mistakes = [(expected / 2, "that is one arm; the question asks for both arms together."),
                (float(row["events_logrank"]), "that is the number of churn events; the question asks for accounts."),
                (float(row["n_total_proportions"]), "that is the two-proportions answer; use the log-rank column."),
                (float(row["n_per_arm_control"]), "that is one arm of the two-proportions design.")]
    return _check_number(answer, expected, what="the number of accounts", rel=0.002, abs_=1.0, mistakes=mistakes)


# ---------------------------------------------------------------------------------------------------------
# lesson 9: KPIs by business function
# (a section of its own, appended: the checks above belong to lessons 1-8)
# ---------------------------------------------------------------------------------------------------------
#: The customer of lesson 9's exercise, in one sentence.
FUNCTION_EXERCISE_STORY = ("A recruiting team buys your applicant-tracking product. Its head puts the objective in "
                           "one sentence: \"fill roles faster without lowering quality.\"")

#: The business function of that team in the bundled catalog.
FUNCTION_EXERCISE_FUNCTION = "hr"

#: Candidate KPIs for the recruiting team, defined as catalog entries (none is in the bundled catalog), each with the
#: question the check asks when the candidate is put in the wrong place.
FUNCTION_CANDIDATES: dict[str, dict[str, Any]] = {
    "recruiter_logins": {
        "description": "Sign-ins of the customer's recruiters to the applicant-tracking product per month.",
        "owner": "vendor", "level": "activity", "countable": True, "unit": "logins per month", "function": "product",
        "question": "recruiter_logins is something people do in the product: whose success is that?"},
    "days_to_quality_hire": {
        "description": "Median days from opening a role to an accepted offer, counting only hires who pass their "
                       "six-month review.",
        "owner": "customer", "level": "outcome", "countable": True, "unit": "days", "function": "hr",
        "question": "days_to_quality_hire: who owns it, is it work in the tool or a result the team is after, "
                    "and can it be counted?"},
    "company_profit_per_employee": {
        "description": "The whole company's profit divided by its headcount, per year.",
        "owner": "customer", "level": "business_result", "countable": True, "unit": "USD per employee",
        "function": "finance",
        "question": "company_profit_per_employee is a result of the whole company: could a recruiting tool credibly "
                    "claim a change in it?"},
    "interviews_scheduled": {
        "description": "Interviews the recruiters book through the product's calendar each week.",
        "owner": "customer", "level": "activity", "countable": True, "unit": "interviews per week", "function": "hr",
        "question": "interviews_scheduled counts work done in the tool: is an interview booked a role filled?"},
    "candidate_experience": {
        "description": "How candidates feel about the way they were treated during hiring.",
        "owner": "customer", "level": "outcome", "countable": False, "unit": "", "function": "hr",
        "question": "candidate_experience is a real objective, but can it be counted as stated?"},
}
#: The slots of the answer: the function and one candidate per bear.
FUNCTION_SLOTS = ("function", "goldilocks", "papa", "mama")
_SLOT_WORDS = {"goldilocks": "Goldilocks", "papa": "Papa Bear", "mama": "Mama Bear"}


def function_candidates() -> pd.DataFrame:
    """Lesson 9's candidate KPIs as a catalog-shaped table (without verdicts)."""
    return pd.DataFrame([{"name": n, **{k: v for k, v in d.items() if k != "question"}}
                         for n, d in FUNCTION_CANDIDATES.items()])[
        ["name", "owner", "level", "countable", "unit", "description"]]


def _candidate_verdict(name: str) -> str:
    definition = {k: v for k, v in FUNCTION_CANDIDATES[name].items() if k != "question"}
    return classify_metric(name, **definition)["verdict"]


def check_function_kpis(answer: Mapping[str, Any], catalog: str | Path | None = None) -> Feedback:
    """Lesson 9: ``{"function": ..., "goldilocks": ..., "papa": ..., "mama": ...}`` for the recruiting team of
    :data:`FUNCTION_EXERCISE_STORY`: its business function (one of the catalog's) and, from
    :data:`FUNCTION_CANDIDATES`, a candidate of each bear, as :func:`classify_metric` classifies it. A wrong slot gets
    the question to ask of the candidate given, never the right candidate."""
    from .metrics.functions import functions_of

    if _unanswered(answer):
        return _NOT_ANSWERED
    if not isinstance(answer, Mapping):
        return _wrong("give a dict with the keys " + ", ".join(FUNCTION_SLOTS) + ".")
    extra = [k for k in answer if k not in FUNCTION_SLOTS]
    if extra:
        return _wrong(f"unexpected key {', '.join(map(repr, extra))}; the keys are {', '.join(FUNCTION_SLOTS)}.")
    given = {k: answer.get(k, ...) for k in FUNCTION_SLOTS}
    if all(_unanswered(v) for v in given.values()):
        return _NOT_ANSWERED
    lines, todo = [], [k for k, v in given.items() if _unanswered(v)]
    functions = functions_of(load_catalog(catalog))
    f = given["function"]
    if not _unanswered(f):
        if f not in functions:
            lines.append(f"function: {f!r} is not a function of the catalog ({', '.join(functions)}).")
        elif f != FUNCTION_EXERCISE_FUNCTION:
            lines.append(f"function: not {f}; which team in the by-function table is after filling roles?")
    picks = [v for k, v in given.items() if k != "function" and not _unanswered(v)]
    twice = sorted({p for p in picks if isinstance(p, str) and picks.count(p) > 1})
    if twice:
        lines.append(f"{', '.join(twice)} is given for more than one bear; each bear needs a candidate of its own.")
    for slot in ("goldilocks", "papa", "mama"):
        pick = given[slot]
        if _unanswered(pick) or pick in twice:
            continue
        if pick not in FUNCTION_CANDIDATES:
            lines.append(f"{slot}: {pick!r} is not one of the candidates ({', '.join(FUNCTION_CANDIDATES)}).")
        elif _candidate_verdict(pick) != slot:
            lines.append(f"{slot}: not {pick} as the {_SLOT_WORDS[slot]}. "
                         f"{FUNCTION_CANDIDATES[pick]['question']}")
    if lines:
        return _wrong("\n  ".join(["look again:"] + lines) + (f"\n  Still to answer: {', '.join(todo)}." if todo else ""))
    if todo:
        return Feedback(False, f"✔ So far so good, but still to answer: {', '.join(todo)}.")
    return _correct("The team's own countable outcome is the KPI to agree on; the company result is what it serves, "
                    "and the product's activity only shows the tool is used.")


def check_vendor_functions(answer: Any, catalog: str | Path | None = None) -> Feedback:
    """Lesson 9: which business functions of the catalog have no Goldilocks KPI because every one of their metrics is
    the vendor's own? ``answer`` is a list (or set) of function names."""
    from .metrics.functions import functions_of

    if _unanswered(answer):
        return _NOT_ANSWERED
    if isinstance(answer, str):
        answer = [answer]
    if not isinstance(answer, (list, tuple, set, frozenset)) or not all(isinstance(a, str) for a in answer):
        return _wrong("give a list of function names, e.g. ['sales'].")
    cat = load_catalog(catalog)
    functions = functions_of(cat)
    unknown = [a for a in answer if a not in functions]
    if unknown:
        return _wrong(f"not a function of the catalog: {', '.join(unknown)} (the functions: {', '.join(functions)}).")
    with_function = cat[cat["function"].notna()]
    expected = {f for f in functions if (with_function.loc[with_function["function"] == f, "owner"] == "vendor").all()}
    given = set(answer)
    if given == expected:
        return _correct("Their numbers describe the vendor: a customer's Goldilocks KPI lives in the function of the "
                        "team that bought the product.")
    hints = []
    for f in sorted(given - expected):
        hints.append(f"{f} has metrics its own customer team owns; look at the owner column of its metrics.")
    if expected - given:
        hints.append(f"{len(expected - given)} more function{'s have' if len(expected - given) != 1 else ' has'} "
                     "only metrics owned by the vendor; look for the functions whose goldilocks column is empty.")
    return _wrong("\n  ".join(["look again:"] + hints))


__all__ += ["FUNCTION_EXERCISE_STORY", "FUNCTION_EXERCISE_FUNCTION", "FUNCTION_CANDIDATES", "FUNCTION_SLOTS",
            "function_candidates", "check_function_kpis", "check_vendor_functions"]
