"""Out-of-sample discrimination and calibration: the estimators against brute force."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from csresearch.survival import (bootstrap_concordance, breslow_baseline, brier_score, calibration_fit,
                                 calibration_table, concordance, cumulative_dynamic_auc, cumulative_hazard_at,
                                 grouped_folds, ipcw_weights)

def _censored(n=300, seed=0, ties=True):
    rng = np.random.default_rng(seed)
    score = rng.normal(size=n)
    t = rng.exponential(np.exp(-score))
    c = rng.exponential(1.5, size=n)
    frame = pd.DataFrame({"time": np.minimum(t, c), "event": (t <= c).astype(int), "score": score})
    if ties:
        frame["time"] = np.ceil(frame["time"] * 20) / 20
        frame["score"] = np.round(frame["score"], 1)
    return frame


# ---------------------------------------------------------------------------------------------- the estimators
def test_td_auc_without_censoring_is_the_empirical_auc_of_case_control_pairs():
    f = _censored(400).assign(event=1)
    times = [0.2, 0.5, 1.0]
    out = cumulative_dynamic_auc(f, "time", "event", "score", times)
    for t, row in zip(times, out.itertuples()):
        cases = f.loc[f["time"] <= t, "score"].to_numpy()
        controls = f.loc[f["time"] > t, "score"].to_numpy()
        diff = cases[:, None] - controls[None, :]
        brute = ((diff > 0) + 0.5 * (diff == 0)).mean()
        assert row.auc == pytest.approx(brute, abs=1e-12)
        assert (row.cases, row.controls) == (len(cases), len(controls))


def test_td_auc_with_censoring_weights_cases_by_the_censoring_km():
    from lifelines import KaplanMeierFitter

    f = _censored(300, seed=4, ties=False)
    t = 0.6
    km = KaplanMeierFitter().fit(f["time"], 1 - f["event"])
    case = (f["event"] == 1) & (f["time"] <= t)
    g_before = km.survival_function_at_times(f.loc[case, "time"] - 1e-9).to_numpy()
    cases, controls = f.loc[case, "score"].to_numpy(), f.loc[f["time"] > t, "score"].to_numpy()
    w = 1 / g_before
    brute = (w[:, None] * (cases[:, None] > controls[None, :])).sum() / (w.sum() * len(controls))
    assert cumulative_dynamic_auc(f, "time", "event", "score", [t])["auc"].iloc[0] == pytest.approx(brute, rel=1e-9)
    weights = ipcw_weights(f, "time", "event", t)
    assert (weights[(f["event"] == 0) & (f["time"] <= t)] == 0).all()
    assert weights[f["time"] > t].nunique() == 1


def test_brier_without_censoring_is_the_mean_squared_error():
    f = _censored(500, seed=2).assign(event=1)
    risk = 1 / (1 + np.exp(-f["score"]))
    y = (f["time"] <= 0.5).astype(float)
    out = brier_score(f, "time", "event", risk.to_numpy(), 0.5)
    assert out["brier"] == pytest.approx(((y - risk) ** 2).mean(), abs=1e-12)
    assert out["n"] == out["known"] == len(f)


def test_calibration_of_true_risks_has_intercept_0_and_slope_1():
    rng = np.random.default_rng(8)
    n = 20_000
    risk = 1 / (1 + np.exp(-rng.normal(-1, 1, n)))
    event = rng.random(n) < risk
    f = pd.DataFrame({"time": np.where(event, 0.5, 2.0), "event": 1, "risk": risk})
    fit = calibration_fit(f, "time", "event", "risk", 1.0)
    assert fit["intercept"] == pytest.approx(0, abs=0.05) and fit["slope"] == pytest.approx(1, abs=0.05)
    table = calibration_table(f, "time", "event", "risk", 1.0)
    assert len(table) == 10 and table["n"].sum() == n
    assert np.allclose(table["observed"], table["mean_predicted"], atol=0.03)
    assert (table["ci_low"] <= table["observed"]).all() and (table["observed"] <= table["ci_high"]).all()
    too_spread = calibration_fit(f.assign(risk=1 / (1 + np.exp(-2 * np.log(risk / (1 - risk))))), "time", "event",
                                 "risk", 1.0)
    assert too_spread["slope"] == pytest.approx(0.5, abs=0.05)


def test_breslow_baseline_is_the_brute_force_sum_over_risk_sets():
    rng = np.random.default_rng(3)
    n = 200
    f = pd.DataFrame({"start": rng.integers(0, 5, n).astype(float), "s": rng.choice(["a", "b"], n),
                      "lp": rng.normal(size=n), "event": rng.integers(0, 2, n)})
    f["stop"] = f["start"] + rng.integers(1, 10, n)
    base = breslow_baseline(f, "stop", "event", "lp", entry="start", strata="s")
    for s, curve in base.groupby("stratum"):
        g = f[f["s"] == s]
        cum = 0.0
        for u in sorted(g.loc[g["event"] == 1, "stop"].unique()):
            at_risk = (g["start"] < u) & (g["stop"] >= u)
            cum += ((g["stop"] == u) & (g["event"] == 1)).sum() / np.exp(g.loc[at_risk, "lp"]).sum()
            assert curve.loc[curve["time"] == u, "cumhaz"].iloc[0] == pytest.approx(cum, rel=1e-12)
    first = base.groupby("stratum")["time"].min()
    at = cumulative_hazard_at(base, [first["a"] - 0.5, first["a"], 99.0], ["a", "a", "b"])
    assert at[0] == 0 and at[1] == base.loc[base["stratum"] == "a", "cumhaz"].iloc[0]
    assert at[2] == base.loc[base["stratum"] == "b", "cumhaz"].iloc[-1]


def _panel(n_acc=120, seed=1):
    """Monthly (start, stop] rows per account (strata, tied times and scores), with churn at the last row."""
    rng = np.random.default_rng(seed)
    rows = []
    for a in range(n_acc):
        months = rng.integers(1, 12)
        churn = rng.random() < 0.6
        seg = "x" if a % 3 else "y"
        for m in range(months):
            rows.append({"account_id": f"a{a}", "segment": seg, "start": 30.0 * m, "stop": 30.0 * (m + 1),
                         "event": int(churn and m == months - 1), "s1": rng.integers(0, 4), "s2": rng.normal()})
    return pd.DataFrame(rows)


def test_bootstrap_concordance_is_exactly_c_on_each_resample():
    f = _panel()
    scores = f[["s1", "s2"]].astype(float)
    point, draws = bootstrap_concordance(f, "stop", "event", scores, cluster="account_id", entry="start",
                                         strata="segment", n_boot=3, seed=9)
    for col in scores:
        assert point[col] == pytest.approx(concordance(f, "stop", "event", col, entry="start",
                                                       strata="segment")["c_index"], abs=1e-12)
    # the first resample, rebuilt by copying accounts
    rng = np.random.default_rng(9)
    ids = pd.unique(f["account_id"])
    pick = rng.integers(0, len(ids), (3, len(ids)))[0]
    copy = pd.concat([f[f["account_id"] == ids[a]].assign(account_id=f"c{k}") for k, a in enumerate(pick)])
    for col in scores:
        assert draws[col].iloc[0] == pytest.approx(concordance(copy, "stop", "event", col, entry="start",
                                                               strata="segment")["c_index"], abs=1e-12)
    # above the table limit: resamples of a subsample, rescaled around the full-data C
    point2, sub = bootstrap_concordance(f, "stop", "event", scores, cluster="account_id", entry="start",
                                        strata="segment", n_boot=200, seed=9, max_cells=2_000)
    assert point2.equals(point) and 2 <= sub.attrs["subsample"] < len(ids)
    assert abs(sub["s2"].median() - point["s2"]) < 3 * sub["s2"].std()
    with pytest.raises(ValueError, match="overlap"):
        bootstrap_concordance(f.assign(start=(f["start"] - 15).clip(lower=0)), "stop", "event", scores,
                              cluster="account_id", entry="start", n_boot=1)


def test_folds_keep_every_row_of_an_account_together_and_spread_churners():
    f = _panel(200)
    churned = f.groupby("account_id")["event"].transform("max")
    fold = grouped_folds(f["account_id"], 5, seed=3, balance=churned)
    assert (pd.Series(fold).groupby(f["account_id"].to_numpy()).nunique() == 1).all()
    per_account = pd.DataFrame({"fold": fold, "churned": churned}).groupby(f["account_id"].to_numpy()).first()
    assert np.ptp(per_account["fold"].value_counts().to_numpy()) <= 1
    assert np.ptp(per_account.loc[per_account["churned"] == 1, "fold"].value_counts().to_numpy()) <= 1
    assert (grouped_folds(f["account_id"], 5, seed=3, balance=churned) == fold).all()
    assert not (grouped_folds(f["account_id"], 5, seed=4, balance=churned) == fold).all()
