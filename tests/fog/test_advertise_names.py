"""A fog node name with control characters is refused with a clear error (issue #12).

mDNS names are shown on every client's screen; zeroconf refuses control characters in
them with its own exception, which used to end `fog advertise` in a traceback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from backends.errors import ConfigurationError
from backends.fog.advertise import FogAdvertiser

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["lab\x1b]0;pwned\x07node", "two\nlines", "  "])
def test_names_with_control_characters_are_refused(name: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        FogAdvertiser(8443, name=name, addresses=["127.0.0.1"])
    assert "control characters" in caught.value.reason
    assert name.strip() == "" or name not in caught.value.explain()


def test_fog_advertise_reports_a_bad_name_in_three_lines() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tui", "fog", "advertise", "--port", "8443", "--name", "a\x1b[2Jb"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "\x1b" not in result.stderr
    assert result.stderr.startswith("error: The fog node name cannot be advertised.")
