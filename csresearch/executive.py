"""The executive page: the study's answer in one sentence per segment, how sure we are, what it is worth, what next.

Everything on the page is chosen from the study's findings (:mod:`csresearch.findings`): the answer sentence from
the verdict of ``attainment_effect`` (for the all-segments study, also from each segment's partially pooled
estimate, judged by the same rule), the comparison with usage from ``outcomes_vs_usage``, the certainty from the
same interval (:func:`csresearch.findings.direction_chance`, in calibrated words). The effect is put in churn
percentage points over the window and in ARR by :mod:`csresearch.value`. No statistical term reaches the page.

:func:`summarize` builds the page's content (a plain dict, stored in ``results.json`` as ``executive`` so the
index speaks from the same words), :func:`render` draws it as HTML, for the report and for the index alike.
"""
from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from . import value
from .findings import Finding, chance_text, chance_words, direction_chance, level_text
from .maturity import NEXT_STEP

if TYPE_CHECKING:
    from .context import StudyContext
    from .result import Result

#: words that must never reach the executive page (tested): the analyst sections keep them, with a glossary
JARGON = ("hazard", "c-index", "c =", "q-value", "q =", "landmark", "log-rank", "logrank", "spline", "p =", "p <",
          "cox", "kaplan", "confidence interval", " ci ", "covariate", "stratif", "bootstrap", "cross-valid")

#: the answer in two or three words, by verdict (the card's badge and the index's verdict column)
ANSWER_WORDS = {"supported": "Yes", "not_supported": "No difference worth having", "opposite": "No: the other way",
                "inconclusive": "Cannot tell yet", "not_estimable": "Not enough data yet"}

QUESTION = "Do accounts that reach their own goals stay longer, and do goals foresee churn better than product usage?"


# ---------------------------------------------------------------------------------------------------------
# building the page's content
# ---------------------------------------------------------------------------------------------------------
def summarize(ctx: "StudyContext", sections: Sequence["Result"], results: dict[str, Any]) -> dict[str, Any]:
    """The executive page of one study, from its findings and records (see the module's docstring)."""
    found = {f.id: f for s in sections for f in s.findings}
    names = ctx.names
    out: dict[str, Any] = {"study": results["study"], "scope": _scope(ctx), "question": QUESTION,
                           "as_of": results.get("as_of"), "n_accounts": results.get("n_accounts"),
                           "n_churned": results.get("n_churned"), "level": level_text(ctx.level)}
    if not ctx.visible:
        out["answers"] = [{"segment": ctx["segment"], "label": _scope(ctx), "verdict": "not_estimable",
                           "finding": "attainment_effect",
                           "sentence": f"This study has fewer than {ctx.min_cell} accounts, so it shows nothing.",
                           "certainty": "", "chance": None}]
        out.update(usage=None, money=None, next_step=None, limits=[])
        return out
    window = _window(ctx)
    out["window"] = window["text"]
    head = found.get("attainment_effect")
    effect = _effect(ctx, head, window) if head is not None else None
    out["answers"] = [_answer(ctx, _scope(ctx), ctx["segment"], head, effect, window)]
    pooled = [(k.split(":", 1)[1], f) for k, f in found.items() if k.startswith("pooled_effect:")]
    if ctx["segment"] is None and pooled:
        out["answers"] += _segment_answers(ctx, pooled, window, names)
    out["usage"] = _usage(ctx, found.get("outcomes_vs_usage"))
    if not ctx.has_goals:  # what a team without goals can act on today: the usage signals the data confirms
        out["signals"] = _signals(ctx, found.get("churn_drivers"), results.get("churn_drivers") or {})
    out["money"] = _money(ctx, head, effect, window)
    out["next_step"] = _next_step(ctx, results, head, out["money"])
    out["limits"] = _limits(ctx, sections, head)
    return out


def _scope(ctx: "StudyContext") -> str:
    return ctx.names(ctx["segment"]) if ctx["segment"] is not None else "All segments"


def _window(ctx: "StudyContext") -> dict:
    """The window churn is read over: 12 months when observed, else the label horizon or the window observed."""
    basis = ctx.base_churn
    days = int(basis.get("days") or 0)
    if basis.get("twelve_month"):
        text = "12 months"
    elif ctx.label_horizon is not None:
        text = f"the {ctx.label_horizon}-day label window"
    else:
        text = f"{days / 30.44:.0f} months" if days >= 61 else f"{days} days"
    return {"days": days, "rate": basis.get("rate"), "text": text}


def _anchor(ctx: "StudyContext") -> tuple[float, np.ndarray] | None:
    """Observed churn over the window and the attainment of the accounts it was observed on (at the first
    landmark): what :func:`value.anchor_baseline` needs. None when the data cannot give it."""
    from .windows import covered_days, window_churn

    try:
        lm = ctx.first_landmark()
    except (ValueError, KeyError):
        return None
    if len(lm) < ctx.min_cell:
        return None
    st = lm.assign(duration=lm["time"], entry=lm["entry_after"])
    label = ctx.label_horizon is not None
    days = min(_window(ctx)["days"] or 365, covered_days(st, ctx.min_cell) if not label else 10 ** 6)
    if days <= 0:
        return None
    rate = window_churn(st, days, alpha=ctx.alpha, label=label)["rate"]
    if rate is None or not (0 <= rate < 1):
        return None
    return float(rate), lm["attainment"].to_numpy(float)


def _effect(ctx: "StudyContext", head: Finding, window: dict) -> dict | None:
    """Churn with no progress and with goals reached over the window, and the difference in points, at the
    headline's estimate and interval ends."""
    if head.verdict == "not_estimable" or head.estimate is None:
        return None
    anchor = _anchor(ctx)
    if anchor is None:
        return None
    observed, att = anchor
    est, lo, hi = value.churn_difference(observed, att, [head.estimate, head.ci_low, head.ci_high])
    points = sorted([lo["points"], hi["points"]])
    return {"none": est["none"], "reached": est["reached"], "points": est["points"], "points_low": points[0],
            "points_high": points[1], "observed": observed, "hr": head.estimate, "hr_low": head.ci_low,
            "hr_high": head.ci_high}


def _points(x: float) -> str:
    """A difference in churn points as words: "12 fewer", "3 more", "about 0"."""
    r = round(abs(x)) if abs(x) >= 1 else round(abs(x), 1)
    if r == 0:
        return "no"
    return f"{r:g} fewer" if x < 0 else f"{r:g} more"


def _range(low: float, high: float, joint: str = "and") -> str:
    """Two differences in churn points as one range: "between 16 and 20 fewer leaving", "from 3 fewer to 5 more"."""
    def num(x: float) -> str:
        r = round(abs(x)) if abs(x) >= 1 else round(abs(x), 1)
        return f"{r:g}"

    if low < 0 and high < 0:
        if joint == "and" and num(high) == num(low):  # a narrow interval on a large book: not "between 18 and 18"
            return f"about {num(low)} fewer leaving"
        return f"{'between' if joint == 'and' else 'from'} {num(high)} {joint} {num(low)} fewer leaving"
    if low > 0 and high > 0:
        if joint == "and" and num(high) == num(low):
            return f"about {num(low)} more leaving"
        return f"{'between' if joint == 'and' else 'from'} {num(low)} {joint} {num(high)} more leaving"
    return f"{'between' if joint == 'and' else 'from'} {_points(low)} {joint} {_points(high)} leaving"


def _per100(p: float) -> str:
    v = 100 * p
    return f"{v:.0f}" if v >= 0.95 else "under 1" if v >= 0.05 else "almost none"


def _answer(ctx: "StudyContext", label: str, segment: str | None, head: Finding | None, effect: dict | None,
            window: dict) -> dict:
    """One segment's answer: a sentence chosen by the verdict, and how sure, in words."""
    verdict = head.verdict if head is not None else "not_estimable"
    w = window["text"]
    chance = (direction_chance(head.estimate, head.ci_low, head.ci_high, level=ctx.level, null=1.0, direction="below",
                               log=True) if head is not None and verdict != "not_estimable" else None)
    if not ctx.has_goals:
        sentence = ("Whether accounts that reach their goals stay longer cannot be answered yet, because no "
                    "customer goals are recorded.")
        certainty = ""
    elif verdict == "not_estimable":
        sentence = (f"There is not enough data yet to tell whether accounts that reach their goals stay "
                    f"longer ({_plain_reason(head.reason if head else None)}).")
        certainty = ""
    else:
        sentence, certainty = _answer_words(label, verdict, chance, effect, w, ctx.level, head)
    opposite = verdict == "not_supported" and head is not None and head.ci_low is not None and head.ci_low > 1
    return {"segment": segment, "label": label, "verdict": verdict, "finding": "attainment_effect",
            "answer": ANSWER_WORDS["opposite" if opposite else verdict] if ctx.has_goals else "Cannot be answered yet",
            "sentence": sentence, "certainty": certainty, "chance": chance,
            "short": _short(verdict, opposite, chance, effect, w), "effect": effect, "ranked": verdict == "supported"}


def _short(verdict: str, opposite: bool, chance: float | None, effect: dict | None, w: str) -> str:
    """A segment's answer in one line for a list: the churn either side and the difference, how sure."""
    if verdict == "not_estimable" or effect is None:
        return "not enough data to tell."
    fig = (f"{_per100(effect['reached'])} in 100 with goals reached left within {w}, against {_per100(effect['none'])} "
           f"in 100 with no progress")
    if verdict == "supported":
        return f"{fig}: {_range(effect['points_low'], effect['points_high'])} per 100 ({chance_words(chance)})."
    if verdict == "inconclusive":
        return f"the data cannot tell yet (it could be {_range(effect['points_low'], effect['points_high'], 'to')} per 100)."
    if opposite:
        return f"{fig}: more churn, not less ({chance_words(1 - chance)})."
    return "no difference worth having."


def _answer_words(label: str, verdict: str, chance: float | None, effect: dict | None, w: str, level: float,
                  head: Any) -> tuple[str, str]:
    lv = level_text(level)
    fig = (f"about {_per100(effect['reached'])} in 100 accounts with their goals reached left within {w}, against "
           f"{_per100(effect['none'])} in 100 of those with no progress") if effect else ""
    rng = f"{_range(effect['points_low'], effect['points_high'])} per 100 accounts over {w} ({lv} interval)" if effect else ""
    odds = f"{chance_words(chance)} ({chance_text(chance)})" if chance is not None else ""
    if verdict == "supported":
        sentence = ("Accounts that reached their goals stayed longer" + (f": {fig}." if fig else "."))
        certainty = f"How sure we are: {odds} that reaching goals goes with less churn" + (f"; {rng}." if rng else ".")
    elif verdict == "inconclusive":
        sentence = "The data cannot tell yet whether accounts that reach their goals stay longer."
        # the odds in brackets are those of the direction the sentence names
        lean, odds = (("it leans toward less churn", chance_text(chance)) if chance >= 0.66 else
                      ("it leans toward more churn", chance_text(1 - chance)) if chance < 0.34 else
                      ("less and more churn are about as likely as not", f"{chance_text(chance)} for less churn")
                      ) if chance is not None else ("", "")
        certainty = ("How sure we are: not sure. " + (f"{lean[0].upper()}{lean[1:]} ({odds}), short of "
                                                      f"what the study needs to claim it" if lean else "")
                     + (f"; the difference could be anywhere {_range(effect['points_low'], effect['points_high'], 'to')} "
                        f"per 100 accounts over {w} ({lv} interval)." if effect else "."))
    elif verdict == "not_supported" and head is not None and head.ci_low is not None and head.ci_low > 1:
        sentence = ("Accounts that reached their goals left more often, not less" + (f": {fig}." if fig else "."))
        certainty = (f"How sure we are: {chance_words(1 - chance)} ({chance_text(1 - chance)}) that reaching goals goes "
                     f"with more churn here" + (f"; {rng}." if rng else ".")) if chance is not None else ""
    else:  # not_supported within the margin: a real but negligible difference at most
        sentence = "Reaching goals makes no difference worth having to which accounts stay."
        certainty = ("How sure we are: the data rules out a difference worth having" + (f"; {rng}." if rng else "."))
    return sentence, certainty


def _segment_answers(ctx: "StudyContext", pooled: list[tuple[str, Finding]], window: dict, names) -> list[dict]:
    """Each segment's answer in the all-segments study, from its ``pooled_effect:<segment>`` finding."""
    out = []
    for segment, f in pooled:
        effect = None
        if f.verdict != "not_estimable":
            seg_anchor = _anchor_for(ctx, segment)
            if seg_anchor is not None:
                e, l, h = value.churn_difference(seg_anchor[0], seg_anchor[1], [f.estimate, f.ci_low, f.ci_high])
                pts = sorted([l["points"], h["points"]])
                effect = {"none": e["none"], "reached": e["reached"], "points": e["points"], "points_low": pts[0],
                          "points_high": pts[1], "observed": seg_anchor[0], "hr": f.estimate, "hr_low": f.ci_low,
                          "hr_high": f.ci_high}
        a = _answer(ctx, names(segment), segment, f, effect, window)
        a.update(finding=f.id, pooled=True)
        out.append(a)
    ranked = sorted([a for a in out if a["ranked"] and a.get("effect")], key=lambda a: a["effect"]["points"])
    for i, a in enumerate(ranked, 1):
        a["rank"] = i
    return out


def _anchor_for(ctx: "StudyContext", segment: str) -> tuple[float, np.ndarray] | None:
    """:func:`_anchor` of one segment's accounts. Its accounts at the first landmark are the study's of that
    segment (each account's attainment and follow-up are its own), so they are read from the study's table, not
    computed again from the goal measurements (which a large book has let go by now)."""
    ds = ctx.ds.for_segment(segment, measurements=False)
    sub = type(ctx)(params={**ctx.params, "segment": None}, ds=ds, engine=ctx.engine)
    try:
        lm = ctx.first_landmark()
        sub._first_landmark = lm[lm["account_id"].isin(pd.Index(ds.accounts["account_id"]))].reset_index(drop=True)
    except (ValueError, KeyError) as exc:
        sub._first_landmark = exc.with_traceback(None)
    return _anchor(sub)


def _plain_reason(reason: str | None) -> str:
    """A floor's or a model's reason for a reader: churn counts kept, model terms left out."""
    if not reason:
        return "too little data"
    m = re.search(r"only ([\d,]+) churn events", reason)
    if m:
        return f"only {m.group(1)} accounts left in the period studied, too few for a firm answer"
    m = re.search(r"only ([\d,]+) accounts ([^;]+?);", reason)
    if m:
        return f"only {m.group(1)} accounts {m.group(2)}, too few to compare"
    if "goal" in reason:
        return "no customer goals are recorded"
    if "too few" in reason or "fewer than" in reason:
        return "too few accounts"
    return "the data does not allow it"


def _usage(ctx: "StudyContext", f: Finding | None) -> dict | None:
    """Do goals foresee churn better than usage: one sentence from ``outcomes_vs_usage``."""
    if f is None:
        return None
    chance = (direction_chance(f.estimate, f.ci_low, f.ci_high, level=ctx.level, null=0.0, direction="above", log=False)
              if f.verdict != "not_estimable" else None)
    if f.verdict == "supported":
        text = (f"Goals also foresee which accounts will leave better than product usage does "
                f"({chance_words(chance)}, {chance_text(chance)}).")
    elif f.verdict == "not_supported" and f.ci_high is not None and f.ci_high < 0:
        text = "Product usage foresees which accounts will leave better than goals do."
    elif f.verdict == "not_supported":
        text = "Goals and product usage foresee which accounts will leave about equally well."
    elif f.verdict == "inconclusive":
        text = "Whether goals foresee which accounts will leave better than product usage does, the data cannot tell yet."
    elif not ctx.has_goals:
        text = "Without recorded goals, only product usage can foresee which accounts will leave."
    else:
        text = f"Goals and usage could not be compared as foresight of churn ({_plain_reason(f.reason)})."
    return {"finding": "outcomes_vs_usage", "verdict": f.verdict, "sentence": text, "chance": chance}


def _signals(ctx: "StudyContext", f: Finding | None, record: dict) -> dict | None:
    """The churn signals the data confirms (``churn_drivers``), in words: "accounts with more active users leave
    less often"."""
    if f is None:
        return None
    if f.verdict != "supported":
        return {"finding": f.id, "verdict": f.verdict,
                "sentence": "No usage metric or account attribute clearly warns of churn on this data yet."}
    alpha = ctx.alpha
    sig = [d for d in record.get("drivers", []) if d.get("q") is not None and d["q"] < alpha][:3]
    words = []
    for d in sig:
        name = ctx.names(d["name"]) + (f" {ctx.names(d['level'])}" if d.get("level") else "")
        more = "less" if d["effect"] < 1 else "more"
        words.append(f"{name.lower() if name[:1].isupper() and not name[1:2].isupper() else name} ({more} churn "
                     f"with more)" if not d.get("level") else f"{name} ({more} churn)")
    return {"finding": f.id, "verdict": f.verdict,
            "sentence": "The data already warns of churn: the clearest signals are " + ", ".join(words) + "."}


def _money(ctx: "StudyContext", head: Finding | None, effect: dict | None, window: dict) -> dict:
    """ARR at risk over the window, by attainment group when the effect is supported, and the ARR that goes with
    moving accounts up a level."""
    currency = ctx["currency"] or ""
    if "arr" not in ctx.ds.accounts.columns or ctx.ds.accounts["arr"].isna().all():
        return {"missing": "The export has no ARR column, so the answer cannot be put in money (the data contract's "
                           "accounts.arr)."}
    st = ctx.survival
    active = st[st["event"] == 0][["account_id"]].merge(ctx.ds.accounts[["account_id", "arr"]], on="account_id")
    rate = window["rate"]
    total = float(active["arr"].fillna(0).sum())
    out: dict[str, Any] = {"currency": currency, "window": window["text"], "active_accounts": int(len(active)),
                           "active_arr": total, "groups": [], "moves": [],
                           "note": "An association, not a promise: customers who reach their goals may differ in "
                                   "other ways too."}
    if rate is None:
        out["missing"] = "Too little churn was observed to put ARR at risk."
        return out
    out["arr_at_risk"] = total * rate
    if not (ctx.has_goals and effect is not None and head is not None and head.verdict == "supported"):
        out["by_group"] = False
        return out
    active = active.merge(ctx.attainment_at_as_of, on="account_id", how="left")
    anchor = _anchor(ctx)
    if anchor is None:
        out["by_group"] = False
        return out
    observed, att_anchor = anchor
    runs = [value.arr_at_stake(active, observed=observed, anchor=att_anchor, hr=h, threshold=ctx["attainment_threshold"])
            for h in (head.estimate, head.ci_low, head.ci_high)]
    est = runs[0]
    out["by_group"] = True
    out["arr_at_risk"] = float(sum(g["arr_at_risk"] for g in est["groups"]))
    words = dict(value.GROUPS, **{"no goals": "no goals recorded"})
    for g in est["groups"]:
        if g["accounts"] == 0:
            continue
        small = g["accounts"] < ctx.min_cell
        out["groups"].append({"group": g["group"], "label": words[g["group"]], "accounts": None if small else g["accounts"],
                              "arr": None if small else g["arr"], "churn": None if small else g["churn"],
                              "arr_at_risk": None if small else g["arr_at_risk"],
                              "suppressed": f"fewer than {ctx.min_cell} accounts" if small else None})
    for i, mv in enumerate(est["moves"]):
        if mv["accounts"] < ctx.min_cell:
            continue
        ends = sorted([runs[1]["moves"][i]["arr_retained"], runs[2]["moves"][i]["arr_retained"]])
        out["moves"].append({"from": mv["from"], "to": mv["to"], "from_label": words[mv["from"]],
                             "to_label": words[mv["to"]], "accounts": mv["accounts"], "arr": mv["arr"],
                             "arr_retained": mv["arr_retained"], "low": ends[0], "high": ends[1]})
    return out


def _next_step(ctx: "StudyContext", results: dict, head: Finding | None, money: dict) -> dict:
    """One recommended next step, from the maturity level and the verdicts."""
    mat = (results.get("maturity") or {})
    level = (mat.get("inferred") or {}).get("level")
    size = (results.get("study_scope") or {}).get("next_study_accounts")
    verdict = head.verdict if head is not None else "not_estimable"
    if not ctx.has_goals or level is not None and level <= 2:
        return {"text": NEXT_STEP[2], "why": "Without recorded goals the question cannot be answered; with them, the "
                                             "next study can." + (f" About {size:,} accounts would give a firm answer."
                                                                  if size else ""), "level": level}
    if verdict in ("not_estimable", "inconclusive"):
        more = f" A study of about {size:,} accounts would give a firm answer." if size else ""
        return {"text": "Keep recording goals and their progress for every account, and run this study again when more "
                        "accounts have renewed or left." + more,
                "why": "The data so far cannot tell.", "level": level}
    if verdict == "supported":
        moves = sorted(money.get("moves") or [], key=lambda m: -m["arr_retained"])
        if moves:
            m = moves[0]
            cur = money.get("currency", "")
            goal = "make a start on their goals" if m["from"] == "none" else "reach their goals"
            text = (f"Put customer-success effort where goals stall: helping the {m['accounts']:,} accounts with "
                    f"{m['from_label']} {goal} goes with about {value.money(m['arr_retained'], cur)} "
                    f"of ARR kept over {money['window']} ({value.money_range(m['low'], m['high'], cur)}).")
        else:
            text = "Put customer-success effort where customers' goals stall, and review attainment at every renewal."
        nxt = f" Then: {NEXT_STEP[level]}" if level is not None and level < 5 else ""
        return {"text": text + nxt, "why": "Reaching goals goes with staying here.", "level": level}
    return {"text": "Check that the goals recorded are the customers' real objectives: here, reaching them does not "
                    "go with staying.", "why": "Goals as recorded do not separate who stays.", "level": level}


def _limits(ctx: "StudyContext", sections: Sequence["Result"], head: Finding | None) -> list[str]:
    out = ["This compares customers; it does not prove that helping a customer reach a goal keeps it."]
    from .analyses._gates import NO_GOALS

    parts = sum(s.applicable for s in sections)
    missing = [s for s in sections if not s.ok and s.applicable]
    goals = [s for s in missing if s.not_estimated == NO_GOALS]
    if goals:
        out.append(f"{len(goals)} of {parts} parts of the study need recorded goals.")
    if len(missing) > len(goals):
        out.append(f"{len(missing) - len(goals)} of {parts} parts could not be estimated on this data (see the "
                   "analyst sections).")
    return out


# ---------------------------------------------------------------------------------------------------------
# drawing it
# ---------------------------------------------------------------------------------------------------------
def _attr(finding: str, verdict: str) -> str:
    return f' data-finding="{html.escape(finding)}" data-verdict="{html.escape(verdict)}"'


def render(summary: dict, *, heading: str | None = "The answer", link: str | None = None,
           pooled: dict | None = None) -> str:
    """The executive page as an HTML ``<section class="cs-exec">`` (report and index alike). ``pooled``: this
    segment's answer in the all-segments study (the index adds it to a segment's card)."""
    e = html.escape
    parts = [f'<section class="cs-exec" aria-label="Executive summary: {e(summary["scope"])}">']
    if heading:
        parts.append(f"<h2 id=\"the-answer\">{e(heading)}</h2>")
    title = e(summary["scope"]) if not link else f'<a href="{e(link)}">{e(summary["scope"])}</a>'
    facts = []
    if summary.get("n_accounts") is not None:
        facts.append(f"{summary['n_accounts']:,} accounts, {summary['n_churned']:,} left, data as of {e(str(summary['as_of']))}")
    parts.append(f'<p class="cs-question">{e(summary["question"])}</p>')
    parts.append(f'<div class="cs-answer"><h3>{title}</h3>' + (f'<p class="cs-facts">{e(facts[0])}</p>' if facts else ""))
    main, *segs = summary["answers"]
    if main.get("answer"):
        parts.append(f'<p class="cs-badge cs-v-{e(main["verdict"])}"{_attr(main["finding"], main["verdict"])}>'
                     f'{e(main["answer"])}</p>')
    parts.append(f'<p class="cs-sentence"{_attr(main["finding"], main["verdict"])}>{e(main["sentence"])}</p>')
    if main.get("certainty"):
        parts.append(f'<p class="cs-certainty"{_attr(main["finding"], main["verdict"])}>{e(main["certainty"])}</p>')
    if summary.get("signals"):
        g = summary["signals"]
        parts.append(f'<p class="cs-signals"{_attr(g["finding"], g["verdict"])}>{e(g["sentence"])}</p>')
    if pooled:
        parts.append(f'<p class="cs-pooled"{_attr(pooled["finding"], pooled["verdict"])}><strong>Weighed with the other '
                     f'segments</strong> (the all-segments study): {e(pooled["short"])}</p>')
    if summary.get("usage"):
        u = summary["usage"]
        parts.append(f'<p class="cs-usage"{_attr(u["finding"], u["verdict"])}>{e(u["sentence"])}</p>')
    if segs:
        parts.append(_segments_html(segs))
    if summary.get("money"):
        parts.append(_money_html(summary["money"]))
    if summary.get("next_step"):
        n = summary["next_step"]
        parts.append(f'<p class="cs-next"><strong>Recommended next step.</strong> {e(n["text"])}'
                     + (f' <span class="cs-why">{e(n["why"])}</span>' if n.get("why") else "") + "</p>")
    if summary.get("limits"):
        parts.append('<p class="cs-limits">' + " ".join(e(x) for x in summary["limits"]) + "</p>")
    parts.append("</div></section>")
    return "\n".join(parts)


def _segments_html(segs: list[dict]) -> str:
    e = html.escape
    ranked = sorted([s for s in segs if s.get("rank")], key=lambda s: s["rank"])
    rest = [s for s in segs if not s.get("rank")]
    items = [f'<li{_attr(s["finding"], s["verdict"])}><strong>{e(s["label"])}</strong>: {e(s["short"])}</li>'
             for s in ranked + rest]
    lead = ("Segment by segment, each segment's own data weighed with what the other segments show (so a small "
            "segment can be answered here when its own study cannot"
            + ("; segments where the data can tell come first, largest difference first" if ranked else "") + "):")
    return f'<div class="cs-segments"><p>{e(lead)}</p><ul>' + "".join(items) + "</ul></div>"


def _money_html(m: dict) -> str:
    e = html.escape
    cur = m.get("currency", "")
    if m.get("missing") and "active_arr" not in m:
        return f'<p class="cs-money-missing">{e(m["missing"])}</p>'
    lines = [f'<div class="cs-money-block"><h4>In money, over {e(m["window"])}</h4>']
    if m.get("missing"):
        lines.append(f"<p>{e(m['missing'])}</p></div>")
        return "\n".join(lines)
    lines.append(f"<p>{m['active_accounts']:,} accounts are active today, with {e(value.money(m['active_arr'], cur))} "
                 f"of ARR; about {e(value.money(m['arr_at_risk'], cur))} of it is at risk of leaving over "
                 f"{e(m['window'])} if the past churn holds.</p>")
    if m.get("by_group") and m["groups"]:
        rows = "".join(
            f"<tr><th scope=row>{e(g['label'])}</th>"
            + ("<td colspan=3>" + e(g["suppressed"]) + "</td>" if g.get("suppressed") else
               f"<td class=n>{g['accounts']:,}</td><td class=n>{e(value.money(g['arr'], cur))}</td>"
               f"<td class=n>{e(value.money(g['arr_at_risk'], cur))}"
               + (f" ({100 * g['churn']:.0f}%)" if g.get("churn") is not None else "") + "</td>")
            + "</tr>" for g in m["groups"])
        lines.append('<div class="cs-scroll"><table class="cs-money"><thead><tr><th scope=col>Attainment today</th>'
                     '<th scope=col>Accounts</th><th scope=col>ARR</th><th scope=col>ARR at risk (share)</th></tr>'
                     f"</thead><tbody>{rows}</tbody></table></div>")
        for mv in m["moves"]:
            lines.append(f"<p>Moving the {mv['accounts']:,} accounts with {e(mv['from_label'])} to {e(mv['to_label'])} "
                         f"goes with about {e(value.money(mv['arr_retained'], cur))} more ARR kept over "
                         f"{e(m['window'])} ({e(value.money_range(mv['low'], mv['high'], cur))}).</p>")
        lines.append(f'<p class="cs-note">{e(m["note"])}</p>')
    lines.append("</div>")
    return "\n".join(lines)


def unavailable(ctx: "StudyContext", results: dict) -> dict:
    """The page when it could not be built (an unexpected error, recorded in results.json ``errors``)."""
    return {"study": results.get("study"), "scope": _scope(ctx), "question": QUESTION, "as_of": results.get("as_of"),
            "n_accounts": results.get("n_accounts"), "n_churned": results.get("n_churned"),
            "answers": [{"segment": ctx["segment"], "label": _scope(ctx), "verdict": "not_estimable",
                         "finding": "attainment_effect", "certainty": "", "chance": None,
                         "sentence": "The summary could not be built for this study; the analyst sections below hold "
                                     "what was estimated."}],
            "usage": None, "money": None, "next_step": None, "limits": []}
