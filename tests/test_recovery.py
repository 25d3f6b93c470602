"""The estimator recovers the simulators' ground truth; naive regression does not (direct_lab)."""

from __future__ import annotations

import pytest

from dmca_core.domains.cosmology import DEFAULT_STUDIES, Cosmology
from dmca_core.domains.direct_lab import DEFAULT_STUDY, DirectLab

REPS = 50
ROWS = 2000

CASES = [("cosmology", h, DEFAULT_STUDIES[h]) for h in ("WIMP", "DarkPhoton", "Axion")] + [
    ("direct_lab", h, DEFAULT_STUDY) for h in ("WIMP", "DarkPhoton", "Axion")
]
DOMAINS = {"cosmology": Cosmology(), "direct_lab": DirectLab()}


@pytest.mark.parametrize(("domain", "hyp", "study"), CASES, ids=[f"{d}-{h}" for d, h, _ in CASES])
def test_ci_covers_truth(fallback, domain: str, hyp: str, study: dict) -> None:
    dom = DOMAINS[domain]
    t, y, t0, t1 = study["treatment"], study["outcome"], study["t0"], study["t1"]
    # the population effect, once, with its own large Monte-Carlo sample
    truth = dom.load(hyp, 10, 999, {}).truth(t, y, t0, t1)
    covered = 0
    widths = []
    for seed in range(REPS):
        data = dom.load(hyp, ROWS, seed, {})
        adj = sorted(data.true_graph.parents(t))
        est = fallback.estimate(data.table, t, y, adj, t0, t1)
        covered += est.ci_low <= truth.effect <= est.ci_high
        widths.append(est.ci_high - est.ci_low)
    assert covered >= 0.9 * REPS, f"{domain}/{hyp}: CI covered the truth {covered}/{REPS} times"
    # the truth's Monte-Carlo error is negligible beside the intervals
    assert truth.mc_se < 0.05 * min(widths)


@pytest.mark.parametrize("hyp", ["WIMP", "Axion"])
def test_naive_estimate_is_biased_on_direct_lab(fallback, hyp: str) -> None:
    dom = DirectLab()
    s = DEFAULT_STUDY
    truth = dom.load(hyp, 10, 999, {}).truth(s["treatment"], s["outcome"], s["t0"], s["t1"])
    misses = 0
    for seed in range(10):
        data = dom.load(hyp, ROWS, seed, {})
        est = fallback.estimate(data.table, s["treatment"], s["outcome"], [], s["t0"], s["t1"])
        misses += not (est.ci_low <= truth.effect <= est.ci_high)
    assert misses == 10


def test_discovered_adjustment_sets(fallback, capsys) -> None:
    """How often PC's graph gives T's true parents (recorded in docs/domains.md)."""
    from dmca_core.study import adjustment_sets

    report = {}
    for domain, hyp, study in CASES:
        if (domain, hyp) == ("direct_lab", "DarkPhoton"):
            continue
        dom = DOMAINS[domain]
        t = study["treatment"]
        right = 0
        reps = 10
        for seed in range(reps):
            data = dom.load(hyp, ROWS, seed, {})
            truth_set = tuple(sorted(data.true_graph.parents(t)))
            sets = adjustment_sets(fallback.discover(data.table, 0.01), t, data.table)
            right += any(tuple(sorted(s)) == truth_set for s in sets)
        report[f"{domain}/{hyp}"] = right / reps
    with capsys.disabled():
        print("\ndiscovered graph contains the true adjustment set:", report)
    # where T has no parents PC should rarely invent some
    assert report["cosmology/DarkPhoton"] >= 0.8 and report["cosmology/Axion"] >= 0.8
