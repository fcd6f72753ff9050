"""Tests for csresearch.survival.

Oracles, in order of authority:
* published R ``survival`` output (Rossi recidivism, NCCTG lung, and the
  counting-process example "test2" of Therneau & Grambsch's appendix, whose
  R output -- coefficients and score residuals -- is in the survival package's
  tests/book4.Rout.save);
* statsmodels (the reference engine) and lifelines (test-only oracle) on
  generated data with tied times, delayed entry and start/stop episodes;
* brute-force O(n^2) / per-event-time loops written here from the definitions.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from csresearch import survival as sv
from csresearch.survival import concordance, fit_cox, fit_km, fit_logit, logrank, lr_test

lifelines = pytest.importorskip("lifelines")
from lifelines import CoxPHFitter, CoxTimeVaryingFitter, KaplanMeierFitter  # noqa: E402
from lifelines.datasets import load_lung, load_rossi  # noqa: E402
from lifelines.statistics import multivariate_logrank_test  # noqa: E402
from lifelines.utils import concordance_index  # noqa: E402

ROSSI_COV = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]
COV = ["x1", "x2", "x3"]
TIGHT = {"precision": 1e-12}


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rossi():
    return load_rossi()


@pytest.fixture(scope="module")
def lung():
    df = load_lung()
    # lifelines ships status already recoded 0/1 (R: 1 = censored, 2 = dead)
    assert set(df["status"].unique()) == {0, 1} and df["status"].sum() == 165
    return df


def make_episodes(n_subj: int, seed: int, ties: bool = True) -> pd.DataFrame:
    """Start/stop episodes (1-5 per subject, like monthly rows), delayed entry,
    time-varying x1/x2, constant x3, 3 groups; integer times when ``ties``."""
    rng = np.random.default_rng(seed)
    nrow = rng.integers(1, 6, n_subj)
    sid = np.repeat(np.arange(n_subj), nrow)
    n = len(sid)
    length = rng.integers(1, 4, n).astype(float) if ties else rng.uniform(0.01, 3.0, n)
    entry0 = rng.integers(0, 3, n_subj).astype(float) if ties else rng.uniform(0.0, 2.0, n_subj)
    stop = entry0[sid] + pd.Series(length).groupby(sid).cumsum().to_numpy()
    start = stop - length
    x1 = rng.normal(size=n)
    x2 = (rng.random(n) < 0.4).astype(float)
    x3 = rng.normal(size=n_subj)[sid]
    g = rng.integers(0, 3, n_subj)[sid]
    haz = 0.15 * np.exp(0.5 * x1 - 0.7 * x2 + 0.3 * x3)
    ev = (rng.random(n) < 1 - np.exp(-haz * length)).astype(int)
    df = pd.DataFrame({"id": sid, "start": start, "stop": stop, "event": ev, "x1": x1, "x2": x2, "x3": x3, "g": g})
    before = df.groupby("id")["event"].cumsum() - df["event"]
    return df[before == 0].reset_index(drop=True)


def one_row_per_subject(ep: pd.DataFrame) -> pd.DataFrame:
    """Right-censored data with delayed entry: first start, last stop/event."""
    first = ep.groupby("id")["start"].first()
    last = ep.groupby("id").tail(1).set_index("id")
    out = last.assign(entry=first).reset_index()
    return out


@pytest.fixture(scope="module")
def episodes():
    return make_episodes(300, seed=1)


@pytest.fixture(scope="module")
def subjects(episodes):
    return one_row_per_subject(episodes)


# R survival tests/book4: Therneau & Grambsch appendix data set 2 (counting
# process, tied deaths at t=9, starts equal to other rows' death times).
TEST2 = pd.DataFrame(
    {
        "start": [1, 2, 5, 2, 1, 7, 3, 4, 8, 8.0],
        "stop": [2, 3, 6, 7, 8, 9, 9, 9, 14, 17.0],
        "event": [1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
        "x": [1, 0, 0, 1, 0, 1, 1, 1, 0, 0.0],
    }
)
# R: predict(fit, type="lp") = beta * (x - mean(x)) = -0.0105526 at x = 1,
# se.fit 0.3975884 = se(beta) * 0.5; resid(fit, "score"):
TEST2_BETA = -0.0105526 * 2
TEST2_SE = 0.3975884 * 2
TEST2_SCORE = np.array(
    [0.2553039, -0.2183386, -0.4744295, -0.1101520, 0.1137126, 0.2491954, 0.1057078, -0.4119611, 0.2454808, 0.2454808]
)


# ---------------------------------------------------------------------------
# published R values
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["statsmodels", "numpy"])
def test_rossi_matches_r_coxph_efron(rossi, engine):
    res = fit_cox(rossi, "week", "arrest", ROSSI_COV, engine=engine)
    r_coef = [-0.3794222, -0.0574377, 0.3138998, -0.1497957, -0.4337039, -0.0848711, 0.0914971]
    r_se = [0.1914, 0.0220, 0.3080, 0.2122, 0.3819, 0.1958, 0.0286]
    np.testing.assert_allclose(res.summary["coef"].to_numpy(), r_coef, atol=5e-7)
    np.testing.assert_allclose(res.summary["se"].to_numpy(), r_se, atol=5e-5)
    assert list(res.summary.columns) == ["coef", "se", "hr", "ci_low", "ci_high", "z", "p"]
    assert list(res.summary.index) == ROSSI_COV
    assert res.info["engine"] == engine and res.info["ties"] == "efron"
    assert res.n == 432 and res.events == 114
    # R: Likelihood ratio test = 33.27 on 7 df
    assert lr_test(res)["statistic"] == pytest.approx(33.27, abs=0.005)


def test_lung_km_matches_r_survfit(lung):
    km = fit_km(lung, "time", "status")
    assert list(km.columns) == ["group", "time", "at_risk", "events", "censored", "survival", "ci_low", "ci_high"]
    assert km["group"].isna().all()
    # R: summary(survfit(Surv(time, status) ~ 1, lung), times = 365)
    #   n.risk 65, survival 0.409, std.err 0.0358, 95% CI 0.345 - 0.486
    row = km[km["time"] <= 365].iloc[-1]
    assert row["survival"] == pytest.approx(0.409, abs=5e-4)
    assert row["ci_low"] == pytest.approx(0.345, abs=5e-4)
    assert row["ci_high"] == pytest.approx(0.486, abs=5e-4)
    assert int(km.loc[km["time"] > 365, "at_risk"].iloc[0]) == 65
    assert int(km["events"].sum()) == 165 and int(km["censored"].sum()) == 63


def test_lung_logrank_and_cox_match_r(lung):
    # R: survdiff(Surv(time, status) ~ sex, lung): Chisq = 10.3 on 1 df, p = 0.00131
    lr = logrank(lung, "time", "status", "sex")
    assert lr["statistic"] == pytest.approx(10.3267, abs=5e-5)
    assert lr["df"] == 1
    assert lr["p"] == pytest.approx(0.00131, abs=5e-6)
    # R: coxph(Surv(time, status) ~ sex, lung): coef -0.5310, se 0.1672,
    #    likelihood ratio test 10.63, concordance 0.579
    cox = fit_cox(lung, "time", "status", ["sex"])
    assert cox.summary.loc["sex", "coef"] == pytest.approx(-0.5310, abs=5e-5)
    assert cox.summary.loc["sex", "se"] == pytest.approx(0.1672, abs=5e-5)
    assert cox.summary.loc["sex", "hr"] == pytest.approx(0.588, abs=5e-4)
    assert (cox.summary.loc["sex", "ci_low"], cox.summary.loc["sex", "ci_high"]) == pytest.approx((0.4237, 0.816), abs=5e-4)
    assert lr_test(cox)["statistic"] == pytest.approx(10.63, abs=5e-3)
    lp = lung["sex"] * cox.summary.loc["sex", "coef"]
    assert concordance(lung, "time", "status", lp)["c_index"] == pytest.approx(0.579, abs=5e-4)


@pytest.mark.parametrize("engine", ["statsmodels", "numpy"])
def test_counting_process_matches_r_book_example(engine):
    res = fit_cox(TEST2, "stop", "event", ["x"], entry="start", engine=engine, robust=True)
    assert res.summary.loc["x", "coef"] == pytest.approx(TEST2_BETA, abs=1e-7)
    naive_se = np.sqrt(res.info["vcov_naive"].iloc[0, 0])
    assert naive_se == pytest.approx(TEST2_SE, abs=1e-6)
    # robust variance (each row its own cluster) = var^2 * sum(score^2) for p = 1
    r_robust = TEST2_SE**2 * np.sqrt(np.sum(TEST2_SCORE**2))
    assert res.summary.loc["x", "se"] == pytest.approx(r_robust, abs=1e-6)
    # clusters: R's cluster(id) sums score residuals within id
    df = TEST2.assign(cid=[0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    res_c = fit_cox(df, "stop", "event", ["x"], entry="start", cluster="cid", engine=engine)
    u = np.bincount(df["cid"], TEST2_SCORE)
    assert res_c.summary.loc["x", "se"] == pytest.approx(TEST2_SE**2 * np.sqrt(np.sum(u**2)), abs=1e-6)
    assert res_c.info["n_clusters"] == 5 and res_c.info["robust"]


def test_score_residuals_match_r_and_sum_to_score():
    X = TEST2[["x"]].to_numpy() - TEST2["x"].mean()
    prob = sv.cox._CoxProblem(X, TEST2["stop"].to_numpy(), TEST2["event"].to_numpy() == 1, TEST2["start"].to_numpy(), None, "efron")
    out = prob.evaluate(np.array([TEST2_BETA]), need_resid=True)
    np.testing.assert_allclose(out["resid"].ravel(), TEST2_SCORE, atol=2e-7)
    # at any beta the residuals add up to the score vector
    out = prob.evaluate(np.array([0.7]), need_resid=True)
    np.testing.assert_allclose(out["resid"].sum(axis=0), out["grad"], atol=1e-12)


def test_stratified_copies_match_r_book_example():
    # R tests/book4: three copies, times shifted per stratum; same beta,
    # 3x the information
    parts = []
    for gi in (1, 2, 3):
        parts.append(TEST2.assign(group=gi, start=TEST2["start"] + gi, stop=TEST2["stop"] + gi))
    df = pd.concat(parts, ignore_index=True)
    for engine in ("statsmodels", "numpy"):
        res = fit_cox(df, "stop", "event", ["x"], entry="start", strata="group", engine=engine)
        assert res.summary.loc["x", "coef"] == pytest.approx(TEST2_BETA, abs=1e-7)
        assert res.summary.loc["x", "se"] == pytest.approx(TEST2_SE / np.sqrt(3), abs=1e-6)


# ---------------------------------------------------------------------------
# Kaplan-Meier vs lifelines / statsmodels
# ---------------------------------------------------------------------------


def test_km_with_entry_and_ties_matches_lifelines_and_statsmodels(subjects):
    from statsmodels.duration.survfunc import SurvfuncRight

    df = subjects
    assert df["stop"].duplicated().any() and (df["entry"] > 0).any()
    # some entry times coincide with event times: the exclusive-entry rule matters
    assert np.isin(df["entry"], df.loc[df["event"] == 1, "stop"]).any()
    km = fit_km(df, "stop", "event", entry="entry")
    kmf = KaplanMeierFitter().fit(df["stop"], df["event"], entry=df["entry"])
    np.testing.assert_allclose(km["survival"], kmf.survival_function_.loc[km["time"]].to_numpy().ravel(), atol=1e-12)
    sf = SurvfuncRight(df["stop"].to_numpy(), df["event"].to_numpy(), entry=df["entry"].to_numpy())
    ev = km[km["events"] > 0]
    np.testing.assert_allclose(ev["survival"], sf.surv_prob, atol=1e-12)
    np.testing.assert_array_equal(ev["at_risk"], sf.n_risk)
    # Greenwood se equals statsmodels' (our CI is S * exp(+-z se/S))
    se_log = np.log(ev["ci_high"] / ev["survival"]) / stats.norm.ppf(0.975)
    np.testing.assert_allclose((se_log * ev["survival"])[ev["ci_high"] < 1], sf.surv_prob_se[(ev["ci_high"] < 1).to_numpy()], rtol=1e-9)
    # at risk by brute force
    for _, r in km.iterrows():
        n = int(((df["entry"] < r["time"]) & (r["time"] <= df["stop"])).sum())
        assert r["at_risk"] == n


def test_km_groups_and_alpha(subjects):
    km = fit_km(subjects, "stop", "event", group="g", alpha=0.1)
    assert list(km["group"].unique()) == [0, 1, 2]
    for gval, part in km.groupby("group"):
        sub = subjects[subjects["g"] == gval]
        kmf = KaplanMeierFitter(alpha=0.1).fit(sub["stop"], sub["event"])
        np.testing.assert_allclose(part["survival"], kmf.survival_function_.loc[part["time"]].to_numpy().ravel(), atol=1e-12)
        assert part["time"].is_monotonic_increasing and part["time"].is_unique
    wide = fit_km(subjects, "stop", "event", group="g", alpha=0.01)
    assert (wide["ci_low"] <= km["ci_low"] + 1e-15).all() and (wide["ci_high"] >= km["ci_high"] - 1e-15).all()


def test_km_ci_undefined_at_zero_survival():
    df = pd.DataFrame({"t": [1.0, 2.0, 3.0], "e": [1, 1, 1]})
    km = fit_km(df, "t", "e")
    assert km["survival"].iloc[-1] == 0.0
    assert np.isnan(km["ci_low"].iloc[-1]) and np.isnan(km["ci_high"].iloc[-1])
    assert km["survival"].tolist()[:2] == pytest.approx([2 / 3, 1 / 3])


# ---------------------------------------------------------------------------
# log-rank
# ---------------------------------------------------------------------------


def _logrank_bruteforce(t, d, g, entry=None):
    entry = np.full(len(t), -np.inf) if entry is None else entry
    groups = np.unique(g)
    O_E = np.zeros(len(groups))
    V = np.zeros((len(groups), len(groups)))
    for tk in np.unique(t[d == 1]):
        risk = (entry < tk) & (tk <= t)
        dead = risk & (t == tk) & (d == 1)
        n, dk = risk.sum(), dead.sum()
        nk = np.array([(risk & (g == x)).sum() for x in groups])
        ok = np.array([(dead & (g == x)).sum() for x in groups])
        O_E += ok - dk * nk / n
        if n > 1:
            V += dk * (n - dk) / (n - 1) * (np.diag(nk / n) - np.outer(nk, nk) / n**2)
    stat = O_E[1:] @ np.linalg.solve(V[1:, 1:], O_E[1:])
    return stat


def test_logrank_k_groups_matches_lifelines(subjects):
    res = logrank(subjects, "stop", "event", "g")
    ll = multivariate_logrank_test(subjects["stop"], subjects["g"], subjects["event"])
    assert res["statistic"] == pytest.approx(ll.test_statistic, abs=1e-8)
    assert res["p"] == pytest.approx(ll.p_value, abs=1e-10)
    assert res["df"] == 2 == ll.degrees_of_freedom
    bf = _logrank_bruteforce(subjects["stop"].to_numpy(), subjects["event"].to_numpy(), subjects["g"].to_numpy())
    assert res["statistic"] == pytest.approx(bf, abs=1e-8)


def test_logrank_with_entry_matches_bruteforce(subjects):
    res = logrank(subjects, "stop", "event", "g", entry="entry")
    bf = _logrank_bruteforce(
        subjects["stop"].to_numpy(), subjects["event"].to_numpy(), subjects["g"].to_numpy(), subjects["entry"].to_numpy()
    )
    assert res["statistic"] == pytest.approx(bf, abs=1e-8)
    # entry matters here
    assert abs(res["statistic"] - logrank(subjects, "stop", "event", "g")["statistic"]) > 1e-3


def test_logrank_p_value_does_not_underflow():
    from statsmodels.duration.survfunc import survdiff

    rng = np.random.default_rng(0)
    n = 1000
    g = np.repeat([0, 1], n // 2)
    t = np.where(g == 0, rng.exponential(1.0, n), rng.exponential(3.0, n))
    df = pd.DataFrame({"t": t, "e": 1, "g": g})
    res = logrank(df, "t", "e", "g")
    assert 100 < res["statistic"] < 1000
    assert 0 < res["p"] < 1e-20
    assert res["p"] == pytest.approx(stats.chi2.sf(res["statistic"], 1), rel=1e-12)
    # statsmodels' own p-value (1 - cdf) underflows
    assert survdiff(t, np.ones(n), g)[1] == 0.0


# ---------------------------------------------------------------------------
# Cox vs lifelines / statsmodels
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["statsmodels", "numpy"])
def test_cox_start_stop_matches_lifelines_ctv(episodes, engine):
    df = episodes
    assert df["stop"].duplicated().any()  # tied event/stop times
    assert np.isin(df["start"], df.loc[df["event"] == 1, "stop"]).any()  # start == event time
    res = fit_cox(df, "stop", "event", COV, entry="start", engine=engine)
    ctv = CoxTimeVaryingFitter().fit(
        df[["id", "start", "stop", "event"] + COV], event_col="event", start_col="start", stop_col="stop", id_col="id", fit_options=TIGHT
    )
    np.testing.assert_allclose(res.summary["coef"], ctv.params_.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(res.summary["se"], ctv.standard_errors_.to_numpy(), atol=1e-6)
    assert res.loglik == pytest.approx(ctv.log_likelihood_, abs=1e-6)
    # CoxPHFitter with entry_col fits the same counting-process likelihood
    cph = CoxPHFitter().fit(df[["start", "stop", "event"] + COV], "stop", "event", entry_col="start", fit_options=TIGHT)
    np.testing.assert_allclose(res.summary["coef"], cph.params_.to_numpy(), atol=1e-6)


def test_cox_right_censored_efron_and_breslow_match_lifelines_and_statsmodels(subjects):
    df = subjects
    res = fit_cox(df, "stop", "event", COV)
    cph = CoxPHFitter().fit(df[["stop", "event"] + COV], "stop", "event", fit_options=TIGHT)
    np.testing.assert_allclose(res.summary["coef"], cph.params_.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(res.summary["se"], cph.standard_errors_.to_numpy(), atol=1e-6)
    assert res.loglik == pytest.approx(cph.log_likelihood_, abs=1e-6)
    # delayed entry, one row per subject
    res_e = fit_cox(df, "stop", "event", COV, entry="entry")
    cph_e = CoxPHFitter().fit(df[["entry", "stop", "event"] + COV], "stop", "event", entry_col="entry", fit_options=TIGHT)
    np.testing.assert_allclose(res_e.summary["coef"], cph_e.params_.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(res_e.summary["se"], cph_e.standard_errors_.to_numpy(), atol=1e-6)
    # Breslow: statsmodels PHReg directly (lifelines has no Breslow)
    from statsmodels.duration.hazard_regression import PHReg

    b = fit_cox(df, "stop", "event", COV, ties="breslow", engine="numpy")
    ph = PHReg(df["stop"].to_numpy(), df[COV].to_numpy(), status=df["event"].to_numpy()).fit()
    np.testing.assert_allclose(b.summary["coef"], ph.params, atol=1e-7)
    np.testing.assert_allclose(b.summary["se"], ph.bse, atol=1e-7)
    assert not np.allclose(b.summary["coef"], res.summary["coef"], atol=1e-4)  # ties matter in this data


def test_cox_strata_matches_lifelines(episodes, subjects):
    res = fit_cox(subjects, "stop", "event", COV, strata="g")
    cph = CoxPHFitter(strata=["g"]).fit(subjects[["stop", "event", "g"] + COV], "stop", "event", fit_options=TIGHT)
    np.testing.assert_allclose(res.summary["coef"], cph.params_.loc[COV].to_numpy(), atol=1e-6)
    np.testing.assert_allclose(res.summary["se"], cph.standard_errors_.loc[COV].to_numpy(), atol=1e-6)
    res2 = fit_cox(episodes, "stop", "event", COV, entry="start", strata="g")
    ctv = CoxTimeVaryingFitter(strata=["g"]).fit(
        episodes[["id", "start", "stop", "event", "g"] + COV],
        event_col="event", start_col="start", stop_col="stop", id_col="id", fit_options=TIGHT,
    )
    np.testing.assert_allclose(res2.summary["coef"], ctv.params_.loc[COV].to_numpy(), atol=1e-6)
    np.testing.assert_allclose(res2.summary["se"], ctv.standard_errors_.loc[COV].to_numpy(), atol=1e-6)
    # multi-column strata, via the numpy engine too
    res3 = fit_cox(episodes.assign(h=episodes["id"] % 2), "stop", "event", COV, entry="start", strata=["g", "h"], engine="numpy")
    res4 = fit_cox(episodes.assign(h=episodes["id"] % 2), "stop", "event", COV, entry="start", strata=["g", "h"], engine="statsmodels")
    np.testing.assert_allclose(res3.summary[["coef", "se"]], res4.summary[["coef", "se"]], atol=1e-8)


def test_stratum_without_events_and_rows_never_at_risk(episodes):
    """Rows that are never at risk (censored before the first event of their
    stratum, a stratum without events) do not change the fit or the robust SE."""
    df = episodes.assign(g=np.where(episodes["id"] < 20, 9, episodes["g"]))
    df.loc[df["g"] == 9, "event"] = 0  # stratum 9 has no events
    keep = df["g"] != 9
    for engine in ("numpy", "statsmodels"):
        a = fit_cox(df, "stop", "event", COV, entry="start", strata="g", cluster="id", engine=engine)
        b = fit_cox(df[keep], "stop", "event", COV, entry="start", strata="g", cluster="id", engine=engine)
        np.testing.assert_allclose(a.summary.to_numpy(), b.summary.to_numpy(), atol=1e-9)
        assert a.n == len(df) and b.n == keep.sum()


def test_robust_se_matches_lifelines_without_ties():
    ep = make_episodes(400, seed=3, ties=False)
    df = one_row_per_subject(ep)
    assert not df.loc[df["event"] == 1, "stop"].duplicated().any()
    res = fit_cox(df, "stop", "event", COV, robust=True)
    cph = CoxPHFitter().fit(df[["stop", "event"] + COV], "stop", "event", robust=True, fit_options=TIGHT)
    np.testing.assert_allclose(res.summary["se"], cph.standard_errors_.to_numpy(), atol=1e-6)
    df = df.assign(cl=df["id"] // 3)
    res = fit_cox(df, "stop", "event", COV, cluster="cl")
    cph = CoxPHFitter().fit(df[["stop", "event", "cl"] + COV], "stop", "event", cluster_col="cl", fit_options=TIGHT)
    np.testing.assert_allclose(res.summary["se"], cph.standard_errors_.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(res.summary["coef"], cph.params_.to_numpy(), atol=1e-6)
    # no finite-sample factor in either (R neither); Stata would scale by G/(G-1)
    assert res.info["n_clusters"] == df["cl"].nunique()


def test_lifelines_robust_ignores_ties_documented(subjects):
    """lifelines' score residuals ignore tied event times: it differs from R there."""
    res = fit_cox(subjects, "stop", "event", COV, robust=True)
    cph = CoxPHFitter().fit(subjects[["stop", "event"] + COV], "stop", "event", robust=True, fit_options=TIGHT)
    np.testing.assert_allclose(res.summary["coef"], cph.params_.to_numpy(), atol=1e-6)
    assert np.max(np.abs(res.summary["se"].to_numpy() - cph.standard_errors_.to_numpy())) > 1e-4
    with pytest.raises(NotImplementedError):
        CoxTimeVaryingFitter().fit(subjects[["entry", "stop", "event"] + COV], "event", "entry", "stop", robust=True)


def test_cluster_robust_breslow_matches_statsmodels_and_efron_differs(episodes):
    """Where statsmodels' sandwich is right (Breslow ties, every row's interval
    contains an event time) ours equals it; otherwise statsmodels is wrong."""
    from statsmodels.duration.hazard_regression import PHReg

    def sm_robust(d):
        nudged = np.nextafter(d["start"].to_numpy(), np.inf)
        ph = PHReg(d["stop"].to_numpy(), d[COV].to_numpy(), status=d["event"].to_numpy(), entry=nudged, ties="breslow")
        return ph.fit(groups=d["id"].to_numpy())

    df = episodes
    ours = fit_cox(df, "stop", "event", COV, entry="start", cluster="id", ties="breslow")
    # rows whose (start, stop] holds no event time do not enter the likelihood
    # and have zero score residuals; statsmodels' set-based residual code keeps
    # them at risk for all earlier times (it removes them before adding them)
    ev_t = np.unique(df.loc[df["event"] == 1, "stop"])
    empty = np.searchsorted(ev_t, df["stop"], "right") == np.searchsorted(ev_t, df["start"], "right")
    assert empty.any()
    sm_full, sm_ok = sm_robust(df), sm_robust(df[~empty])
    np.testing.assert_allclose(ours.summary["coef"], sm_full.params, atol=1e-8)
    np.testing.assert_allclose(ours.summary["coef"], sm_ok.params, atol=1e-8)
    np.testing.assert_allclose(ours.summary["se"], sm_ok.bse, atol=1e-8)
    assert np.max(np.abs(ours.summary["se"].to_numpy() - sm_full.bse)) > 1e-4
    # Efron: statsmodels' robust se is off (R book example: see score residual test)
    phe = PHReg(TEST2["stop"].to_numpy(), TEST2[["x"]].to_numpy(), status=TEST2["event"].to_numpy(),
                entry=np.nextafter(TEST2["start"].to_numpy(), np.inf), ties="efron")
    sm_e = phe.fit(groups=np.arange(10))
    r_robust = TEST2_SE**2 * np.sqrt(np.sum(TEST2_SCORE**2))
    assert abs(sm_e.bse[0] - r_robust) > 1e-2


def test_statsmodels_rough_edges_are_real():
    from statsmodels.duration.hazard_regression import PHReg

    # 1. default ties is Breslow
    ph = PHReg(TEST2["stop"].to_numpy(), TEST2[["x"]].to_numpy(), status=TEST2["event"].to_numpy())
    assert ph.ties == "breslow"
    # 2. entry == t counts as at risk: the R example then gives beta = 0, not -0.0211
    raw = PHReg(TEST2["stop"].to_numpy(), TEST2[["x"]].to_numpy(), status=TEST2["event"].to_numpy(),
                entry=TEST2["start"].to_numpy(), ties="efron").fit()
    assert abs(raw.params[0] - TEST2_BETA) > 1e-2
    # 3. robust covariance is NaN when a row is censored before the first event
    df = pd.DataFrame({"t": [0.5, 1, 2, 3, 4, 5, 6, 7.0], "e": [0, 1, 1, 0, 1, 1, 0, 1], "x": [0.1, 1, 0, 2, 1, 0.5, 3, 0.2]})
    ph = PHReg(df["t"].to_numpy(), df[["x"]].to_numpy(), status=df["e"].to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(ph.fit(groups=np.arange(8)).bse).all()
    ours = fit_cox(df, "t", "e", ["x"], robust=True)
    assert np.isfinite(ours.summary["se"]).all()
    lif = CoxPHFitter().fit(df, "t", "e", robust=True, fit_options=TIGHT)
    np.testing.assert_allclose(ours.summary["se"], lif.standard_errors_.to_numpy(), atol=1e-6)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_numpy_engine_equals_statsmodels_engine(seed):
    ep = make_episodes(250, seed=seed)
    ep = ep.assign(cl=ep["id"] // 4)
    for kw in ({"entry": "start"}, {"entry": "start", "strata": "g"}, {}):
        for ties in ("efron", "breslow"):
            a = fit_cox(ep, "stop", "event", COV, ties=ties, cluster="cl", engine="numpy", **kw)
            b = fit_cox(ep, "stop", "event", COV, ties=ties, cluster="cl", engine="statsmodels", **kw)
            np.testing.assert_allclose(a.summary.to_numpy(), b.summary.to_numpy(), atol=1e-8, rtol=1e-8)
            assert a.loglik == pytest.approx(b.loglik, abs=1e-8)
            assert a.info["loglik_null"] == pytest.approx(b.info["loglik_null"], abs=1e-8)


def test_engine_auto_selection():
    small = make_episodes(200, seed=4)
    assert fit_cox(small, "stop", "event", COV, entry="start").info["engine"] == "statsmodels"
    big = make_episodes(23_000, seed=4)
    assert len(big) > sv.SM_MAX_ROWS
    t0 = time.perf_counter()
    res = fit_cox(big, "stop", "event", COV, entry="start", cluster="id")
    assert time.perf_counter() - t0 < 20
    assert res.info["engine"] == "numpy" and res.info["converged"]


def test_cox_output_consistency(rossi):
    res = fit_cox(rossi, "week", "arrest", ROSSI_COV, alpha=0.1)
    z = stats.norm.ppf(0.95)
    np.testing.assert_allclose(res.summary["hr"], np.exp(res.summary["coef"]))
    np.testing.assert_allclose(res.summary["ci_low"], np.exp(res.summary["coef"] - z * res.summary["se"]))
    np.testing.assert_allclose(res.summary["ci_high"], np.exp(res.summary["coef"] + z * res.summary["se"]))
    np.testing.assert_allclose(res.summary["z"], res.summary["coef"] / res.summary["se"])
    np.testing.assert_allclose(res.summary["p"], 2 * stats.norm.sf(np.abs(res.summary["z"])))
    np.testing.assert_allclose(np.sqrt(np.diag(np.array(res.vcov))), res.summary["se"])
    assert res.loglik > res.info["loglik_null"]
    # bool covariates are accepted
    res_b = fit_cox(rossi.assign(fin=rossi["fin"].astype(bool)), "week", "arrest", ROSSI_COV)
    np.testing.assert_allclose(res_b.summary["coef"], fit_cox(rossi, "week", "arrest", ROSSI_COV).summary["coef"])


def test_lr_test_nested(rossi):
    full = fit_cox(rossi, "week", "arrest", ROSSI_COV)
    red = fit_cox(rossi, "week", "arrest", ["fin", "age", "race", "wexp", "mar"])
    out = lr_test(full, red)
    cph_f = CoxPHFitter().fit(rossi[["week", "arrest"] + ROSSI_COV], "week", "arrest")
    cph_r = CoxPHFitter().fit(rossi[["week", "arrest", "fin", "age", "race", "wexp", "mar"]], "week", "arrest")
    assert out["df"] == 2
    assert out["statistic"] == pytest.approx(2 * (cph_f.log_likelihood_ - cph_r.log_likelihood_), abs=1e-5)
    assert out["p"] == pytest.approx(stats.chi2.sf(out["statistic"], 2))
    with pytest.raises(ValueError, match="not nested"):
        lr_test(red, full)
    with pytest.raises(ValueError, match="more coefficients"):
        lr_test(full, full)
    with pytest.raises(ValueError, match="different numbers of rows"):
        lr_test(full, fit_cox(rossi.iloc[:400], "week", "arrest", ["fin"]))
    with pytest.raises(ValueError, match="not nested"):
        lr_test(full, fit_cox(rossi.assign(z=rossi["age"] ** 2), "week", "arrest", ["z"]))


# ---------------------------------------------------------------------------
# concordance
# ---------------------------------------------------------------------------


def _concordance_bruteforce(t, d, s, e=None):
    """R's definition (survival tests/concordance.R 'allpair', reverse=TRUE)."""
    e = np.full(len(t), -np.inf) if e is None else e
    c = {"concordant": 0, "discordant": 0, "tied_score": 0, "tied_time": 0, "tied_both": 0}
    for i in np.flatnonzero(d):
        risk = (e < t[i]) & (t[i] <= t)
        tied = risk & (t == t[i]) & (d == 1)
        comp = risk & ~tied
        c["concordant"] += int(np.sum(comp & (s < s[i])))
        c["discordant"] += int(np.sum(comp & (s > s[i])))
        c["tied_score"] += int(np.sum(comp & (s == s[i])))
        c["tied_time"] += int(np.sum(tied & (s != s[i])))
        c["tied_both"] += int(np.sum(tied & (s == s[i]))) - 1
    c["tied_time"] //= 2
    c["tied_both"] //= 2
    c["n_pairs"] = c["concordant"] + c["discordant"] + c["tied_score"]
    c["c_index"] = (c["concordant"] + c["tied_score"] / 2) / c["n_pairs"]
    return c


@pytest.mark.parametrize("seed", range(4))
def test_concordance_matches_bruteforce_and_lifelines(seed):
    rng = np.random.default_rng(seed)
    n = 400
    t = rng.integers(1, 30, n).astype(float)  # heavy ties in time
    d = (rng.random(n) < 0.6).astype(int)
    s = rng.integers(0, 8, n).astype(float)  # heavy ties in score
    e = np.minimum(np.where(rng.random(n) < 0.5, 0.0, np.floor(t * rng.random(n))), t - 1)
    df = pd.DataFrame({"t": t, "d": d, "s": s, "e": e})
    got = concordance(df, "t", "d", "s")
    assert got == pytest.approx(_concordance_bruteforce(t, d, s))
    # lifelines: higher score = longer survival, hence -s; same tie rules
    assert got["c_index"] == pytest.approx(concordance_index(t, -s, d), abs=1e-12)
    got_e = concordance(df, "t", "d", "s", entry="e")
    assert got_e == pytest.approx(_concordance_bruteforce(t, d, s, e))


def test_concordance_with_few_deaths_and_distinct_scores():
    """Scores compared only with the deaths' scores are counted by rank among those thresholds: rows whose scores
    fall between two deaths' scores, above the highest or below the lowest must count as the raw scores do."""
    rng = np.random.default_rng(7)
    n = 600
    t = rng.integers(1, 60, n).astype(float)
    d = (rng.random(n) < 0.04).astype(int)  # few deaths: most scores lie strictly between the thresholds
    s = rng.normal(size=n)
    s[d == 1] = np.round(s[d == 1], 1)  # some deaths share a score, and rows just above and below them
    s[:20] = np.repeat(s[d == 1][:4], 5)
    e = np.where(rng.random(n) < 0.5, 0.0, np.floor(t * rng.random(n)))
    df = pd.DataFrame({"t": t, "d": d, "s": s, "e": np.minimum(e, t - 1)})
    assert concordance(df, "t", "d", "s") == pytest.approx(_concordance_bruteforce(t, d, s))
    got = concordance(df, "t", "d", "s", entry="e")
    assert got == pytest.approx(_concordance_bruteforce(t, d, s, df["e"].to_numpy()))
    assert got["tied_score"] > 0 and got["n_pairs"] > 1000


def test_concordance_strata_sums_pairs_within_strata(episodes):
    got = concordance(episodes, "stop", "event", "x1", entry="start", strata="g")
    parts = [
        _concordance_bruteforce(p["stop"].to_numpy(), p["event"].to_numpy(), p["x1"].to_numpy(), p["start"].to_numpy())
        for _, p in episodes.groupby("g")
    ]
    keys = ["concordant", "discordant", "tied_score", "tied_time", "tied_both", "n_pairs"]
    want = {k: sum(p[k] for p in parts) for k in keys}
    assert {k: got[k] for k in keys} == want
    assert got["c_index"] == pytest.approx((want["concordant"] + want["tied_score"] / 2) / want["n_pairs"])
    assert got["n_pairs"] < concordance(episodes, "stop", "event", "x1", entry="start")["n_pairs"]


def test_concordance_tie_rules_by_hand():
    # deaths at 1 and 2; censored at 2 ties with the death at 2
    df = pd.DataFrame({"t": [1.0, 2, 2, 2, 3], "d": [1, 1, 1, 0, 0], "s": [5.0, 4, 4, 1, 9]})
    c = concordance(df, "t", "d", "s")
    # death@1 (s=5) vs s=4,4,1 concordant, vs s=9 discordant; each death@2 (s=4)
    # vs censored@2 (s=1) concordant and vs s=9 discordant; deaths@2 tied (x and y)
    assert (c["concordant"], c["discordant"], c["tied_score"], c["tied_both"], c["tied_time"]) == (5, 3, 0, 1, 0)
    assert c["c_index"] == pytest.approx(5 / 8)
    assert concordance(df, "t", "d", -df["s"])["c_index"] == pytest.approx(3 / 8)


def test_concordance_with_episodes_and_speed():
    ep = make_episodes(300, seed=7)
    got = concordance(ep, "stop", "event", "x1", entry="start")
    bf = _concordance_bruteforce(ep["stop"].to_numpy(), ep["event"].to_numpy(), ep["x1"].to_numpy(), ep["start"].to_numpy())
    assert got == pytest.approx(bf)
    rng = np.random.default_rng(0)
    n = 300_000
    big = pd.DataFrame({"t": rng.exponential(size=n).round(3), "d": (rng.random(n) < 0.5).astype(int), "s": rng.normal(size=n)})
    t0 = time.perf_counter()
    c = concordance(big, "t", "d", "s")
    assert time.perf_counter() - t0 < 15
    assert c["c_index"] == pytest.approx(0.5, abs=0.01)


def test_concordance_no_comparable_pairs():
    df = pd.DataFrame({"t": [1.0, 2.0], "d": [0, 0], "s": [1.0, 2.0]})
    assert np.isnan(concordance(df, "t", "d", "s")["c_index"])


# ---------------------------------------------------------------------------
# logit
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def logit_data():
    rng = np.random.default_rng(5)
    n = 800
    df = pd.DataFrame({"a": rng.normal(size=n), "b": (rng.random(n) < 0.5), "cl": rng.integers(0, 60, n)})
    eta = -0.3 + 0.8 * df["a"] - 0.5 * df["b"] + rng.normal(size=60)[df["cl"]] * 0.5
    df["y"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    return df


def test_logit_matches_glm_and_hand_sandwich(logit_data):
    df = logit_data
    res = fit_logit(df, "y", ["a", "b"])
    assert list(res.summary.columns) == ["coef", "se", "or", "ci_low", "ci_high", "p"]
    assert list(res.summary.index) == ["Intercept", "a", "b"]
    X = sm.add_constant(df[["a", "b"]].astype(float).to_numpy())
    glm = sm.GLM(df["y"].to_numpy(), X, family=sm.families.Binomial()).fit()
    np.testing.assert_allclose(res.summary["coef"], glm.params, atol=1e-8)
    np.testing.assert_allclose(res.summary["se"], glm.bse, atol=1e-8)
    np.testing.assert_allclose(res.summary["p"], glm.pvalues, rtol=1e-5, atol=1e-15)
    assert res.loglik == pytest.approx(glm.llf)
    assert res.n == 800 and res.events == int(df["y"].sum())
    np.testing.assert_allclose(res.summary["ci_low"], np.exp(glm.conf_int()[:, 0]), rtol=1e-7)
    # cluster-robust: G/(G-1) * (N-1)/(N-K) * H^-1 (sum_g s_g s_g') H^-1
    rc = fit_logit(df, "y", ["a", "b"], cluster="cl")
    b = rc.summary["coef"].to_numpy()
    p = 1 / (1 + np.exp(-X @ b))
    H = (X * (p * (1 - p))[:, None]).T @ X
    S = np.column_stack([np.bincount(df["cl"], X[:, j] * (df["y"] - p)) for j in range(3)])
    Hi = np.linalg.inv(H)
    G, N, K = df["cl"].nunique(), len(df), 3
    V = G / (G - 1) * (N - 1) / (N - K) * Hi @ S.T @ S @ Hi
    np.testing.assert_allclose(rc.summary["se"], np.sqrt(np.diag(V)), rtol=1e-6)
    assert rc.info["n_clusters"] == G
    # LR test against the intercept-only model and a nested model
    assert lr_test(res)["statistic"] == pytest.approx(2 * (glm.llf - glm.llnull), abs=1e-6)
    red = fit_logit(df, "y", ["a"])
    assert lr_test(res, red)["df"] == 1
    with pytest.raises(ValueError, match="different kinds"):
        lr_test(res, fit_cox(pd.DataFrame({"t": np.arange(1, 801.0), "e": df["y"], "a": df["a"]}), "t", "e", ["a"]))


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


@pytest.fixture()
def small():
    return pd.DataFrame(
        {
            "t": [1.0, 2, 3, 4, 5, 6],
            "e": [1, 0, 1, 1, 0, 1],
            "s": [0.0, 0.5, 0.5, 1, 2, 2],
            "x": [0.1, 0.4, -0.3, 1.2, 0.8, -1.0],
            "z": [1.0, 0, 1, 0, 0, 1],
            "g": ["a", "b", "a", "b", "a", "b"],
        }
    )


def test_nan_is_an_error_naming_column_and_count(small):
    df = small.copy()
    df.loc[[1, 3], "x"] = np.nan
    with pytest.raises(ValueError, match=r"column 'x' has 2 missing"):
        fit_cox(df, "t", "e", ["x", "z"])
    with pytest.raises(ValueError, match=r"column 'x' has 2 missing"):
        fit_logit(df.assign(y=df["e"]), "y", ["x"])
    with pytest.raises(ValueError, match=r"column 'x' has 2 missing"):
        concordance(df, "t", "e", "x")
    bad = small.copy()
    bad.loc[0, "g"] = None
    with pytest.raises(ValueError, match=r"column 'g' has 1 missing"):
        fit_km(bad, "t", "e", group="g")
    with pytest.raises(ValueError, match=r"column 'g' has 1 missing"):
        logrank(bad, "t", "e", "g")
    bad = small.copy()
    bad.loc[2, "t"] = np.nan
    with pytest.raises(ValueError, match=r"column 't' has 1 missing"):
        fit_km(bad, "t", "e")


def test_invalid_times_and_events(small):
    with pytest.raises(ValueError, match="negative"):
        fit_cox(small.assign(t=small["t"] - 2), "t", "e", ["x"])
    with pytest.raises(ValueError, match="negative"):
        fit_km(small.assign(t=small["t"] - 2), "t", "e")
    with pytest.raises(ValueError, match=r"2 row\(s\) have entry 'en' >= duration 't'"):
        fit_cox(small.assign(en=[0, 2, 0, 5, 0, 0.0]), "t", "e", ["x"], entry="en")
    with pytest.raises(ValueError, match="entry"):
        fit_km(small.assign(en=[0, 2, 0, 0, 0, 0.0]), "t", "e", entry="en")
    with pytest.raises(ValueError, match="entry"):
        concordance(small.assign(en=[1, 0, 0, 0, 0, 0.0]), "t", "e", "x", entry="en")
    with pytest.raises(ValueError, match=r"must be 0/1.*1 row"):
        fit_cox(small.assign(e=[1, 0, 2, 1, 0, 1]), "t", "e", ["x"])
    with pytest.raises(ValueError, match="must be 0/1"):
        fit_km(small.assign(e=[1, 0, -1, 1, 0, 1]), "t", "e")
    with pytest.raises(ValueError, match="outcome column 'y' must be 0/1"):
        fit_logit(small.assign(y=[0, 1, 0.5, 1, 0, 1]), "y", ["x"])
    with pytest.raises(ValueError, match="inf"):
        fit_cox(small.assign(x=[np.inf, 0, 0, 1, 2, 3]), "t", "e", ["x"])
    with pytest.raises(ValueError, match="no events"):
        fit_cox(small.assign(e=0), "t", "e", ["x"])


def test_bad_covariates(small):
    with pytest.raises(ValueError, match=r"zero variance.*\['c'\]"):
        fit_cox(small.assign(c=3.0), "t", "e", ["x", "c"])
    with pytest.raises(ValueError, match="zero variance"):
        fit_logit(small.assign(y=small["e"], c=1.0), "y", ["c"])
    with pytest.raises(TypeError, match="non-numeric"):
        fit_cox(small, "t", "e", ["g"])
    with pytest.raises(KeyError, match="nope"):
        fit_cox(small, "t", "e", ["nope"])
    with pytest.raises(ValueError, match="collinear"):
        fit_cox(small.assign(w=2 * small["x"] + 1), "t", "e", ["x", "w"], engine="numpy")
    with pytest.raises(ValueError, match="ties"):
        fit_cox(small, "t", "e", ["x"], ties="exact")
    with pytest.raises(ValueError, match="at least 2"):
        logrank(small.assign(g="a"), "t", "e", "g")


def test_collinearity_and_non_convergence(small, rossi):
    with pytest.raises(ValueError, match=r"collinear.*\['w'\]"):
        fit_cox(rossi.assign(w=rossi["age"] - 2 * rossi["prio"]), "week", "arrest", ["age", "prio", "w"])
    with pytest.raises(ValueError, match="collinear"):
        fit_logit(rossi.assign(w=rossi["age"] + rossi["prio"]), "arrest", ["age", "prio", "w"])
    # monotone likelihood: the covariate orders the deaths perfectly
    sep = pd.DataFrame({"t": np.arange(1.0, 11.0), "e": 1, "x": np.arange(10.0, 0.0, -1.0) > 5})
    for engine in ("numpy", "statsmodels"):
        with pytest.warns(RuntimeWarning, match=r"\['x'\] may be infinite"):
            res = fit_cox(sep, "t", "e", ["x"], engine=engine)
        assert res.summary.loc["x", "coef"] > 10


def test_inputs_not_modified_and_deterministic(episodes):
    before = episodes.copy()
    a = fit_cox(episodes, "stop", "event", COV, entry="start", cluster="id")
    b = fit_cox(episodes.sample(frac=1.0, random_state=3), "stop", "event", COV, entry="start", cluster="id")
    pd.testing.assert_frame_equal(episodes, before)
    np.testing.assert_allclose(a.summary.to_numpy(), b.summary.to_numpy(), atol=1e-10)
    c = concordance(episodes, "stop", "event", "x1", entry="start")
    assert c == concordance(episodes.iloc[::-1], "stop", "event", "x1", entry="start")


def test_concordance_within_strata_sums_pair_counts():
    rng = np.random.default_rng(5)
    n = 400
    df = pd.DataFrame({"t": rng.integers(1, 30, n).astype(float), "e": rng.integers(0, 2, n),
                       "s": rng.normal(size=n), "g": rng.choice(["a", "b", "c"], n)})
    total = concordance(df, "t", "e", "s", strata="g")
    parts = [concordance(grp, "t", "e", "s") for _, grp in df.groupby("g")]
    conc = sum(p["concordant"] for p in parts)
    tied = sum(p["tied_score"] for p in parts)
    pairs = sum(p["n_pairs"] for p in parts)
    assert total["n_pairs"] == pairs
    assert total["c_index"] == pytest.approx((conc + tied / 2) / pairs, abs=1e-12)
    # a score that only separates strata carries no information within them
    df["between"] = df["g"].map({"a": 0.0, "b": 1.0, "c": 2.0})
    assert concordance(df, "t", "e", "between", strata="g")["c_index"] == pytest.approx(0.5)
