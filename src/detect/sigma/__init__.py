"""Sigma rules: parsed by pySigma, compiled to fused kernels over canonical batches."""

from sigma.modifiers import SigmaWideModifier, modifier_mapping

from detect.sigma.compiler import UnsupportedError, compile_rule
from detect.sigma.engine import (
    LoadedRule,
    RuleError,
    SigmaEngine,
    UnsupportedRule,
    load_sigma,
    parse_rules,
)

# The specification names UTF-16LE ``utf16le`` and ``wide`` its alias; pySigma 2.0 only
# registers ``wide``. Register the specification's name too (same modifier class).
modifier_mapping.setdefault("utf16le", SigmaWideModifier)

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
