"""The 95% interval covers the true effect about 95% of the time.

Hundreds of random linear-Gaussian DAGs; each study's truth comes from re-simulating the DAG
under do(T = t1) and do(T = t0), never from a regression.
"""

from __future__ import annotations

import numpy as np
from linear_sem import random_sem

from dmca_core.study import run_study

N_STUDIES = 300


def test_ci_covers_the_simulated_truth_about_95_percent(fallback) -> None:
    rng = np.random.default_rng(20240611)
    covered, z = [], []
    for i in range(N_STUDIES):
        model = random_sem(rng, p=int(rng.integers(3, 7)))
        t, y = sorted(rng.choice(len(model.names), size=2, replace=False))
        treatment, outcome = model.names[t], model.names[y]
        t0, t1 = float(rng.normal()), float(rng.normal())
        truth = model.true_effect(treatment, outcome, t0, t1, n=100, seed=i)
        table, _ = model.simulate(int(rng.integers(300, 800)), rng)
        r = run_study(
            table,
            treatment=treatment,
            outcome=outcome,
            t0=t0,
            t1=t1,
            graph=model.graph,
            estimator=fallback,
            seed=i,
        )
        covered.append(r.ci_low <= truth <= r.ci_high)
        z.append((r.causal_effect - truth) / r.se)
    coverage = float(np.mean(covered))
    assert 0.92 <= coverage <= 0.98, coverage
    # the errors are centred and scaled as the SE says (unbiased, SE neither too small nor too big)
    assert abs(np.mean(z)) < 0.2
    assert 0.85 < np.std(z) < 1.15
