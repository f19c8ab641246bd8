"""The API's examples run (from the repository root, where the samples are)."""

from __future__ import annotations

import doctest
import os
from pathlib import Path

import pytest

import detect
import detect.config
import detect.kernels.ip_parse

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("module", [detect, detect.config, detect.kernels.ip_parse],
                         ids=lambda m: m.__name__)
def test_examples_run(module: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items()
                                        if not k.startswith("DETECT_")})
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0


def test_public_api_is_documented() -> None:
    for name in detect.__all__:
        if name.startswith("_"):
            continue
        obj = getattr(detect, name)
        assert obj.__doc__ and "Examples" in obj.__doc__, name
