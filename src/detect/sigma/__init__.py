"""Sigma rules: parsed by pySigma, compiled to pyarrow kernels over canonical batches."""

from detect.sigma.compiler import UnsupportedError, compile_rule
from detect.sigma.engine import (
    LoadedRule,
    RuleError,
    SigmaEngine,
    UnsupportedRule,
    load_sigma,
    parse_rules,
)

__all__ = [
    "LoadedRule",
    "RuleError",
    "SigmaEngine",
    "UnsupportedError",
    "UnsupportedRule",
    "compile_rule",
    "load_sigma",
    "parse_rules",
]
