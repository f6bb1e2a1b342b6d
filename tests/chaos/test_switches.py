"""The testing-only switches: the negative controls refuse to run without their explicit flag,
and STORAGE_COMMIT_DELAY is validated like any setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import agree
from agree.conf.settings import Settings
from agree.errors import ConfigurationError
from agree.unsafe import ALLOW_PHRASE

REPO = Path(agree.__file__).resolve().parent.parent
CHECK = "import agree.unsafe as u; u.refuse_unless_allowed(); print('allowed')"


def _run(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AGREE_")}
    clean["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-c", CHECK], env={**clean, **env}, capture_output=True, text=True
    )


@pytest.mark.parametrize("switch", ["AGREE_UNSAFE_LOCAL_READS", "AGREE_UNSAFE_ACK_BEFORE_DURABLE"])
def test_an_unsafe_switch_alone_is_refused(switch: str) -> None:
    refused = _run(**{switch: "1"})
    assert refused.returncode != 0
    assert "ConfigurationError" in refused.stderr and switch in refused.stderr
    wrong_phrase = _run(**{switch: "1", "AGREE_TESTING_ALLOW_UNSAFE": "1"})
    assert wrong_phrase.returncode != 0
    allowed = _run(**{switch: "1", "AGREE_TESTING_ALLOW_UNSAFE": ALLOW_PHRASE})
    assert allowed.returncode == 0 and "allowed" in allowed.stdout


def test_no_switch_needs_no_flag() -> None:
    assert _run().stdout.strip() == "allowed"


def test_storage_commit_delay_is_a_non_negative_number() -> None:
    assert Settings(STORAGE_COMMIT_DELAY=0.25).STORAGE_COMMIT_DELAY == 0.25
    assert Settings().STORAGE_COMMIT_DELAY == 0.0
    for bad in (-1.0, float("nan")):
        with pytest.raises(ConfigurationError, match="STORAGE_COMMIT_DELAY"):
            Settings(STORAGE_COMMIT_DELAY=bad)
