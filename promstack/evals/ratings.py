"""The arena's rating math: win rates, Bradley-Terry strengths by maximum likelihood, and
bootstrap 95% intervals. Pure functions of the match list; nothing here imports the engine.

One numeric library: scipy (with numpy, which it is built on). The A/B report needs scipy for
its p-values (Welch's t, Mann-Whitney U with its exact small-sample distribution, the normal
tail), which would be more code to write and check by hand than this module's solver saves; so
scipy stays, and the arena uses it too instead of hand-writing the linear algebra: the
likelihood and its derivatives are numpy arrays, the Newton step is LAPACK's LU
(`scipy.linalg.lu_factor`). The fit itself is unchanged (Newton's method on log-strengths with
a halving line search, the first strength held, a singular system ending the fit), so results
agree with the former hand-written solver to rounding. The libraries are imported inside the
functions: faces that import the arena (`promstack --help`, `promstack mcp`) should not pay
for them at start-up.
"""

from __future__ import annotations

import math
import random
from itertools import combinations
from typing import Any

BOOTSTRAP = 1000
PRIOR = 0.1  # virtual ties per pair that met: keeps a model that never won at a finite rating


def counts(matches: list[tuple[int, int, float]], k: int) -> tuple[list[list[float]], list[list[float]]]:
    """wins[i][j]: i's wins over j (ties as half); games[i][j]: matches between them."""
    wins = [[0.0] * k for _ in range(k)]
    games = [[0.0] * k for _ in range(k)]
    for i, j, score_i in matches:
        wins[i][j] += score_i
        wins[j][i] += 1.0 - score_i
        games[i][j] += 1
        games[j][i] += 1
    return wins, games


def bradley_terry(wins: list[list[float]], games: list[list[float]], *, iterations: int = 50,
                  tol: float = 1e-9, start: list[float] | None = None) -> list[float]:
    """Strengths by maximum likelihood, geometric mean 1: Newton's method on log-strengths
    (a few steps, even when one model beat another every time; Hunter's MM iteration takes
    thousands there). Ties count as half a win each way; a weak prior of PRIOR virtual ties
    per pair that met keeps every strength finite when a model never won."""
    import numpy as np

    met = np.asarray(games, dtype=float) > 0
    w = np.asarray(wins, dtype=float) + np.where(met, PRIOR / 2, 0.0)
    n = np.asarray(games, dtype=float) + np.where(met, PRIOR, 0.0)
    k = len(w)
    theta = np.log(np.asarray(start, dtype=float)) if start else np.zeros(k)
    total_w = w.sum(axis=1)

    def loglik(t: Any) -> float:
        # sum over i != j of w_ij * log(s_ij), s_ij = e^t_i / (e^t_i + e^t_j); w_ii is 0.
        return float(-(w * np.logaddexp(0.0, t[None, :] - t[:, None])).sum())

    current = loglik(theta)
    for _ in range(iterations):
        s = 1.0 / (1.0 + np.exp(theta[None, :] - theta[:, None]))  # s[i, j]: i beats j
        grad = total_w - (n * s).sum(axis=1)
        c = n * s * (1.0 - s)
        hess = np.diag(c.sum(axis=1)) - c
        if k < 2:
            break
        # The likelihood only sees differences: hold the first strength and solve for the rest.
        step = _solve(hess[1:, 1:], grad[1:])
        if step is None:
            break
        delta = np.concatenate(([0.0], step))
        scale = 1.0
        while scale > 1e-6:
            trial = theta + scale * delta
            value = loglik(trial)
            if value >= current - 1e-12:
                break
            scale /= 2
        theta, current = trial, value
        if np.max(np.abs(scale * delta)) < tol:
            break
    return [float(x) for x in np.exp(theta - theta.mean())]


def _solve(a: Any, b: Any) -> Any:
    """LU with partial pivoting (LAPACK's); None when a pivot is under 1e-12: the system is
    singular (a model that met no other, or groups that never met: nothing to fit)."""
    import warnings

    from scipy.linalg import LinAlgWarning, lu_factor, lu_solve

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LinAlgWarning)  # an exactly zero pivot: refused below
        lu, piv = lu_factor(a, check_finite=False)
    if (abs(lu.diagonal()) < 1e-12).any():
        return None
    return lu_solve((lu, piv), b, check_finite=False)


def to_rating(strength: float) -> float:
    """An Elo-like scale: 1000 at the geometric mean, +400 per tenfold strength."""
    return 1000.0 + 400.0 * math.log10(strength)


def ratings(models: list[str], matches: list[tuple[str, str, str]], *, resamples: int = BOOTSTRAP,
            seed: int = 0) -> dict[str, dict[str, float]]:
    """Bradley-Terry ratings with bootstrap 95% intervals. `matches` are (a, b, winner|'tie')."""
    index = {m: i for i, m in enumerate(models)}
    coded = [(index[a], index[b], 1.0 if w == a else 0.0 if w == b else 0.5) for a, b, w in matches]
    k = len(models)
    point = bradley_terry(*counts(coded, k))
    samples: list[list[float]] = [[] for _ in range(k)]
    rng = random.Random(seed)
    if coded:
        for _ in range(resamples):
            draw = [coded[rng.randrange(len(coded))] for _ in range(len(coded))]
            # Warm-started from the point estimate: a resample is close to it.
            strengths = bradley_terry(*counts(draw, k), tol=1e-6, start=point)
            for i, s in enumerate(strengths):
                samples[i].append(to_rating(s))
    out = {}
    for m, i in index.items():
        values = sorted(samples[i])
        lo = values[int(0.025 * (len(values) - 1))] if values else None
        hi = values[int(math.ceil(0.975 * (len(values) - 1)))] if values else None
        out[m] = {"strength": round(point[i], 4), "rating": round(to_rating(point[i]), 1),
                  "ci_low": None if lo is None else round(lo, 1), "ci_high": None if hi is None else round(hi, 1)}
    return out


def win_rates(models: list[str], matches: list[tuple[str, str, str]]) -> tuple[dict, dict]:
    """Per pair and per model: wins, losses, ties, matches, (wins + 0.5 ties) / matches."""
    pairs: dict[str, dict[str, Any]] = {}
    overall = {m: {"wins": 0, "losses": 0, "ties": 0, "matches": 0} for m in models}
    for a, b in combinations(models, 2):
        pairs[f"{a} vs {b}"] = {"a": a, "b": b, "wins_a": 0, "wins_b": 0, "ties": 0, "matches": 0}
    for a, b, w in matches:
        key = f"{a} vs {b}" if f"{a} vs {b}" in pairs else f"{b} vs {a}"
        entry = pairs[key]
        entry["matches"] += 1
        if w == "tie":
            entry["ties"] += 1
        elif w == entry["a"]:
            entry["wins_a"] += 1
        else:
            entry["wins_b"] += 1
        for m in (a, b):
            overall[m]["matches"] += 1
            if w == "tie":
                overall[m]["ties"] += 1
            elif w == m:
                overall[m]["wins"] += 1
            else:
                overall[m]["losses"] += 1
    for entry in pairs.values():
        n = entry["matches"]
        entry["win_rate_a"] = round((entry["wins_a"] + 0.5 * entry["ties"]) / n, 4) if n else None
        entry["win_rate_b"] = round((entry["wins_b"] + 0.5 * entry["ties"]) / n, 4) if n else None
    for entry in overall.values():
        n = entry["matches"]
        entry["win_rate"] = round((entry["wins"] + 0.5 * entry["ties"]) / n, 4) if n else None
    total = sum(e["win_rate"] or 0 for e in overall.values())
    for entry in overall.values():
        entry["share"] = round((entry["win_rate"] or 0) / total, 4) if total else None
    return pairs, overall
