"""Condition strings: ``name[:param=value[:value...]]...``.

``blur:sigma=1:5:10:region=object`` expands to three conditions; a bare token after a
``param=value`` token is another value of that parameter. The registered class expands
aliases before the product (:meth:`~featlab.params.ConditionType.expand_values`:
``corrupt:name=imagenet-c`` is the 15 ImageNet-C corruptions) and checks each setting
(:meth:`~featlab.params.ConditionType.validate_params`). Every condition has a canonical
key with all parameters, defaults filled in and in declared order
(``blur:sigma=5:region=object``), which is how stores name it; ``label`` drops defaults.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from .errors import FeatlabError
from .params import format_value

FAMILIES = ("perturbation", "probe")


def condition_class(name: str):
    """The registered class of condition ``name`` and its family (``perturbation`` or
    ``probe``).

    The registries are imported here, on first use, and not at module import: they pull in
    torch, and reading a store's descriptors (``featlab store info``) must not.
    """
    from .perturbations import PERTURBATIONS
    from .probes import PROBES

    if name in PROBES:
        return PROBES.get(name), "probe"
    if name in PERTURBATIONS:
        return PERTURBATIONS.get(name), "perturbation"
    known = ", ".join(sorted(PERTURBATIONS.names() + PROBES.names()))
    raise FeatlabError(f"unknown perturbation {name!r}; known: {known}")


@dataclass(frozen=True)
class Condition:
    """A perturbation name with a complete, validated parameter set."""

    name: str
    params: dict = field(default_factory=dict, compare=False, hash=False)
    key: str = ""

    @property
    def family(self) -> str:
        """``perturbation`` (one perturbed image per row) or ``probe`` (a probe set)."""
        return condition_class(self.name)[1]

    @property
    def perturbation(self):
        """An instance of the registered class (a perturbation or a probe set)."""
        return condition_class(self.name)[0]()

    @property
    def label(self) -> str:
        """Short form: the strength parameter and parameters that differ from their defaults."""
        spec = {p.name: p for p in condition_class(self.name)[0].params}
        parts = [self.name] + [f"{k}={format_value(v)}" for k, v in self.params.items()
                               if spec[k].required or spec[k].multi or v != spec[k].default]
        return ":".join(parts)

    def __str__(self) -> str:
        return self.key


def _convert(text: str, param, condition: str):
    try:
        value = param.kind(text)
    except ValueError:
        raise FeatlabError(
            f"condition {condition!r}: {param.name}={text!r} is not a valid "
            f"{param.kind.__name__}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise FeatlabError(f"condition {condition!r}: {param.name}={text}; expected a finite "
                           f"number in [{param.low}, {param.high}]")
    if param.choices is not None and value not in param.choices:
        raise FeatlabError(f"condition {condition!r}: {param.name}={text!r}; expected one of "
                           f"{', '.join(map(str, param.choices))}")
    if param.low is not None and value < param.low or param.high is not None and value > param.high:
        raise FeatlabError(f"condition {condition!r}: {param.name}={text} is out of range "
                           f"[{param.low}, {param.high}]")
    return value


def _tokenize(text: str) -> tuple[str, dict]:
    tokens = [t.strip() for t in text.strip().split(":")]
    name, raw = tokens[0], {}
    if not name:
        raise FeatlabError(f"condition {text!r} has no perturbation name; e.g. 'blur:sigma=5'")
    current = None
    for token in tokens[1:]:
        if "=" in token:
            current, _, value = token.partition("=")
            current = current.strip()
            if not current or current in raw:
                raise FeatlabError(f"condition {text!r}: parameter {current!r} is empty or repeated")
            raw[current] = [value.strip()]
        elif current is None or not token:
            raise FeatlabError(f"condition {text!r}: expected 'param=value' after {name!r}, "
                               f"got {token!r}")
        else:
            raw[current].append(token)
    return name, raw


def parse_condition(text: str) -> list[Condition]:
    """Parse one condition string into the conditions it expands to."""
    name, raw = _tokenize(text)
    cls, _ = condition_class(name)
    spec = {p.name: p for p in cls.params}
    unknown = sorted(set(raw) - set(spec))
    if unknown:
        known = ", ".join(spec) or "none"
        raise FeatlabError(f"condition {text!r}: unknown parameter {unknown[0]!r} for {name}; "
                           f"known: {known}")
    values = {}
    for pname, param in spec.items():
        if pname not in raw:
            if param.required:
                raise FeatlabError(f"condition {text!r}: {name} needs {pname}=..., "
                                   f"e.g. '{name}:{pname}=...'")
            values[pname] = [param.default]
            continue
        if len(raw[pname]) > 1 and not param.multi:
            raise FeatlabError(f"condition {text!r}: {pname} takes one value")
        values[pname] = [_convert(v, param, text) for v in raw[pname]]
    values = cls.expand_values(values)  # aliases, e.g. corrupt:name=imagenet-c
    out = []
    for combo in itertools.product(*values.values()):
        params = cls.validate_params(dict(zip(values, combo)))
        key = ":".join([name] + [f"{k}={format_value(v)}" for k, v in params.items()
                                 if spec[k].keyed_default or v != spec[k].default])
        out.append(Condition(name=name, params=params, key=key))
    return out


def parse_conditions(text) -> list[Condition]:
    """Parse a comma-separated list (or a list of strings); duplicates are dropped."""
    items = text.split(",") if isinstance(text, str) else list(text)
    seen, out = set(), []
    for item in items:
        if not item.strip():
            continue
        for cond in parse_condition(item):
            if cond.key not in seen:
                seen.add(cond.key)
                out.append(cond)
    if not out:
        raise FeatlabError("no conditions given; e.g. --conditions clean,blur:sigma=5")
    return out
