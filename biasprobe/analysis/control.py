"""The accuracy and confidence control: an unpenalised logistic regression (statsmodels
``Logit``) of "image has any flip" on standardised atypicality and standardised top-1
confidence at x_0 (``p_top0``), docs/protocols.md section 5."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from biasprobe.analysis.columns import float_values

__all__ = ["LogisticResult", "logistic_control"]


@dataclass(frozen=True)
class LogisticResult:
    """The atypicality coefficient of the logistic accuracy control, or why there is none."""

    n: int
    coef: float = float("nan")
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    p_value: float = float("nan")
    confidence_coef: float = float("nan")
    covariates: tuple[str, ...] = ()
    note: str = ""

    @property
    def ok(self) -> bool:
        return math.isfinite(self.coef)


def _standardise(values: np.ndarray) -> np.ndarray | None:
    sd = float(np.std(values))
    if not math.isfinite(sd) or sd == 0:
        return None
    return (values - values.mean()) / sd


def logistic_control(joined: pd.DataFrame, *, column: str = "atypicality") -> LogisticResult:
    """Unpenalised Logit of "any flip" on standardised atypicality and standardised ``p_top0``."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    if column not in joined.columns:
        return LogisticResult(n=0, note=f"no {column} column")
    y = (float_values(joined["flips"]) > 0).astype(float)
    x = float_values(joined[column])
    conf = float_values(joined["p_top0"]) if "p_top0" in joined.columns else np.full(len(joined), np.nan)
    use_conf = bool(np.isfinite(conf).any())
    keep = np.isfinite(x) & (np.isfinite(conf) if use_conf else True)
    y, x, conf = y[keep], x[keep], conf[keep]
    n = int(y.size)
    if n < 10:
        return LogisticResult(n=n, note=f"too few images ({n}) for a logistic regression")
    if y.min() == y.max():
        return LogisticResult(n=n, note="every image has the same outcome (all flip or none flips)")
    xs = _standardise(x)
    if xs is None:
        return LogisticResult(n=n, note=f"{column} does not vary")
    columns, names = [np.ones(n), xs], ["const", column]
    cs = _standardise(conf) if use_conf else None
    if cs is not None:
        columns.append(cs)
        names.append("p_top0")
    design = np.column_stack(columns)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = sm.Logit(y, design).fit(disp=0, method="newton", maxiter=100)
        except (np.linalg.LinAlgError, ValueError) as exc:
            return LogisticResult(n=n, covariates=tuple(names[1:]), note=f"the fit failed: {exc}")
    if any(issubclass(w.category, PerfectSeparationWarning) for w in caught):
        return LogisticResult(n=n, covariates=tuple(names[1:]), note="perfect separation: the coefficient is not estimable")
    converged = bool(result.mle_retvals.get("converged", True)) and not any(
        issubclass(w.category, ConvergenceWarning) for w in caught
    )
    params = np.asarray(result.params)
    ci = np.asarray(result.conf_int(0.05))
    if not converged or not np.all(np.isfinite(ci)):
        return LogisticResult(n=n, covariates=tuple(names[1:]), note="the fit did not converge")
    return LogisticResult(
        n=n,
        coef=float(params[1]),
        ci_low=float(ci[1, 0]),
        ci_high=float(ci[1, 1]),
        p_value=float(np.asarray(result.pvalues)[1]),
        confidence_coef=float(params[2]) if len(params) > 2 else float("nan"),
        covariates=tuple(names[1:]),
        note="" if cs is not None else "no varying p_top0: atypicality alone",
    )
