"""Every screen as an SVG snapshot, at 80x24 and 120x40 (pytest-textual-snapshot).

The scenes are in :mod:`tests.snapshots.scenes`, shared with the README's screenshots.
A failure writes ``snapshot_report.html`` (the expected and the actual picture side by
side). After a deliberate change to a screen, regenerate the snapshots with::

    pytest tests/snapshots --snapshot-update

and look at the changed files in ``tests/snapshots/__snapshots__/`` before committing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.snapshots.scenes import SCENES, SNAPSHOT_SIZES, Scene


@pytest.mark.parametrize("size", SNAPSHOT_SIZES, ids=lambda size: "{}x{}".format(*size))
@pytest.mark.parametrize("scene", SCENES, ids=lambda scene: scene.name)
def test_screen(
    scene: Scene,
    size: tuple[int, int],
    snap_compare: Callable[..., bool],
    tmp_path: Path,
) -> None:
    with scene.stage(tmp_path) as staged:
        assert snap_compare(staged.app, terminal_size=size, run_before=staged.drive)


def test_every_readme_screenshot_is_a_scene() -> None:
    shots = Path(__file__).resolve().parents[2] / "screenshots"
    readme: set[Any] = {scene.name for scene in SCENES if scene.readme}
    assert readme == {path.stem for path in shots.glob("*.svg")}
