"""A sweep's search space: each hyperparameter checked, and as what Optuna samples.

Azure's distributions are not all Optuna's: Optuna samples bounded distributions only. So
each hyperparameter is sampled by Optuna as a *raw* value from a bounded distribution, and
mapped to the value the trial gets:

=================================  ===============================  =======================
Azure                              Optuna samples (raw)             the trial gets
=================================  ===============================  =======================
choice{values}                     CategoricalDistribution(values)  raw
randint{upper}                     IntDistribution(0, upper - 1)    raw
uniform{min_value, max_value}      FloatDistribution(min, max)      raw
loguniform{min_value, max_value}   the same                         exp(raw)
normal{mu, sigma}                  FloatDistribution(0, 1)          mu + sigma * Φ⁻¹(raw)
lognormal{mu, sigma}               the same                         exp(normal)
q<any of these>{..., q}            as without q                     round(value / q) * q
=================================  ===============================  =======================

(``Φ⁻¹`` is the normal distribution's inverse CDF: inverse transform sampling.) Keeping the
raw values lets a study be rebuilt from the trials' rows at any time, the sampler seeing
exactly what it sampled. Pure: no I/O; every error names its field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from shipyard.domain.errors import InvalidInputError

#: Each distribution and the parameters it takes (all required).
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "choice": ("values",),
    "randint": ("upper",),
    "uniform": ("min_value", "max_value"),
    "loguniform": ("min_value", "max_value"),
    "quniform": ("min_value", "max_value", "q"),
    "qloguniform": ("min_value", "max_value", "q"),
    "normal": ("mu", "sigma"),
    "lognormal": ("mu", "sigma"),
    "qnormal": ("mu", "sigma", "q"),
    "qlognormal": ("mu", "sigma", "q"),
}
#: exp() of more than this overflows a float.
_MAX_EXPONENT = 700.0
# Raw values of the normal family are kept this far inside (0, 1): Φ⁻¹ is infinite at the ends.
_EDGE = 1e-12
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")


@dataclass(frozen=True)
class Parameter:
    """One hyperparameter: what Optuna samples for it, and how that becomes its value."""

    name: str
    kind: str
    distribution: BaseDistribution
    q: float | None = None
    integral: bool = False  # the q-variants with an integer q give integers
    mu: float = 0.0
    sigma: float = 1.0

    @property
    def base(self) -> str:
        return self.kind.removeprefix("q")

    def value(self, raw: Any) -> Any:
        """The value a trial gets for the raw value Optuna sampled."""
        if self.kind in ("choice", "randint", "uniform"):
            return raw
        number = float(raw)
        if self.base in ("normal", "lognormal"):
            number = NormalDist(self.mu, self.sigma).inv_cdf(min(max(number, _EDGE), 1 - _EDGE))
        if self.base in ("loguniform", "lognormal"):
            number = math.exp(number)
        if self.q is None:
            return number
        steps = round(number / self.q)
        if self.integral:
            return int(steps * int(self.q))
        return float(f"{steps * self.q:.12g}")  # 0.30000000000000004 -> 0.3

    def example(self) -> Any:
        """A value the trial could get: what the command is checked with at submit."""
        distribution = self.distribution
        if isinstance(distribution, CategoricalDistribution):
            return distribution.choices[0]
        if self.base in ("normal", "lognormal"):
            return self.value(0.5)
        assert isinstance(distribution, FloatDistribution | IntDistribution)
        return self.value(distribution.low)


def parse_parameter(name: str, spec: Mapping[str, Any], *, field: str) -> Parameter:
    """One ``search_space`` entry, checked."""
    if not _NAME.fullmatch(name):
        raise InvalidInputError(
            f"{name!r} is not a valid hyperparameter name: it must match {_NAME.pattern} "
            "(the trial gets it as an input of that name)",
            code="invalid_search_space",
            field=field,
        )
    kind = spec.get("type")
    if not isinstance(kind, str) or kind.lower() not in DISTRIBUTIONS:
        raise InvalidInputError(
            f"unknown distribution {kind!r}: use one of {', '.join(DISTRIBUTIONS)}",
            code="unknown_distribution",
            field=f"{field}.type",
        )
    kind = kind.lower()
    wanted = DISTRIBUTIONS[kind]
    for key in spec:
        if key != "type" and key not in wanted:
            raise InvalidInputError(
                f"{kind} takes {', '.join(wanted)}, not {key!r}",
                code="unknown_field",
                field=f"{field}.{key}",
            )
    for key in wanted:
        if spec.get(key) is None:
            raise InvalidInputError(
                f"{kind} needs {key}", code="missing_field", field=f"{field}.{key}"
            )
    if kind == "choice":
        return Parameter(name, kind, _categorical(spec["values"], f"{field}.values"))
    if kind == "randint":
        upper = spec["upper"]
        if not isinstance(upper, int) or isinstance(upper, bool) or upper < 1:
            raise InvalidInputError(
                "upper must be an integer of at least 1 (randint gives 0 .. upper - 1)",
                code="invalid_search_space",
                field=f"{field}.upper",
            )
        return Parameter(name, kind, IntDistribution(0, upper - 1))
    q = _positive(spec["q"], f"{field}.q") if kind.startswith("q") else None
    integral = isinstance(spec.get("q"), int)
    if "mu" in wanted:
        mu = _number(spec["mu"], f"{field}.mu")
        sigma = _positive(spec["sigma"], f"{field}.sigma")
        if kind.endswith("lognormal") and mu + 8 * sigma > _MAX_EXPONENT:
            raise InvalidInputError(
                "mu and sigma are exponents here: exp(mu + a few sigma) overflows",
                code="invalid_search_space",
                field=f"{field}.sigma",
            )
        distribution = FloatDistribution(0.0, 1.0)
        return Parameter(name, kind, distribution, q, integral, mu, sigma)
    low = _number(spec["min_value"], f"{field}.min_value")
    high = _number(spec["max_value"], f"{field}.max_value")
    if low > high:
        raise InvalidInputError(
            f"min_value ({low:g}) is greater than max_value ({high:g})",
            code="invalid_search_space",
            field=f"{field}.min_value",
        )
    if "log" in kind and high > _MAX_EXPONENT:
        raise InvalidInputError(
            f"{kind}'s bounds are exponents (the values lie between exp(min_value) and "
            f"exp(max_value)): max_value {high:g} overflows",
            code="invalid_search_space",
            field=f"{field}.max_value",
        )
    return Parameter(name, kind, FloatDistribution(low, high), q, integral)


def _categorical(values: Any, field: str) -> CategoricalDistribution:
    if not isinstance(values, list) or not values:
        raise InvalidInputError(
            "choice needs a non-empty list of values", code="invalid_search_space", field=field
        )
    seen: set[tuple[str, Any]] = set()
    for i, value in enumerate(values):
        if not isinstance(value, str | int | float | bool) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            raise InvalidInputError(
                "a choice value is a string, a number or a boolean",
                code="invalid_search_space",
                field=f"{field}.{i}",
            )
        key = (type(value).__name__, value)
        if key in seen:
            raise InvalidInputError(
                f"{value!r} is listed twice", code="invalid_search_space", field=f"{field}.{i}"
            )
        seen.add(key)
    return CategoricalDistribution(values)


def choices(parameter: Parameter) -> tuple[Any, ...]:
    assert isinstance(parameter.distribution, CategoricalDistribution)
    return tuple(parameter.distribution.choices)


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError("must be a finite number", code="invalid_search_space", field=field)
    return float(value)


def _positive(value: Any, field: str) -> float:
    number = _number(value, field)
    if number <= 0:
        raise InvalidInputError(
            f"must be greater than 0, not {number:g}", code="invalid_search_space", field=field
        )
    return number
