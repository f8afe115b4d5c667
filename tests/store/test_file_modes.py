"""Private files (issue #12): history, exports, settings, keys and tokens are the user's.

Each file spezichat creates with private content is readable only by the user (0600),
and each directory it creates for them is 0700, whatever the umask: the creating code
runs in a child process under umask 022 (the usual) and 000 (the most open). SQLite's
``-wal`` and ``-shm`` files are checked while the database is open, when they exist.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tui.store import Store

REPO = Path(__file__).resolve().parents[2]

CREATE_EVERYTHING = r"""
import json, os, stat, sys
from pathlib import Path

from backends.context import ContextEntry, Role
from backends.fog.certs import create_node_certificates
from backends.fog.serve import create_api_key
from backends.openai.keys import KeyStore
from tui.export import export_to_file
from tui.onboarding.fog import store_token
from tui.settings import Settings, config_dir, data_dir
from tui.store import Store

def mode(path):
    return oct(stat.S_IMODE(os.stat(path).st_mode))

modes = {}
with Store.open_default() as store:
    conversation = store.create_conversation("Private", "mock", "mock")
    store.save_entry(conversation.id, ContextEntry(Role.USER, "my secret question"))
    for suffix in ("", "-wal", "-shm"):
        modes["history.db" + suffix] = mode(store.path.with_name(store.path.name + suffix))
    modes["data dir"] = mode(data_dir())
    export = export_to_file(store, conversation.id, data_dir() / "exports", "md")
    modes["export"] = mode(export)
    modes["export dir"] = mode(export.parent)
modes["settings.toml"] = mode(Settings().save())
modes["config dir"] = mode(config_dir())
modes["openai key file"] = mode(KeyStore(use_keyring=False).set("sk-proj-private-0123456789"))
modes["fog token"] = mode(store_token("fog-private-token-0123"))
node = Path(sys.argv[1])
create_api_key(node / "auth" / "api_key")
modes["fog api key"] = mode(node / "auth" / "api_key")
certs = create_node_certificates(node / "certs")
modes["ca key"] = mode(certs.ca_key)
modes["server key"] = mode(certs.server_key)
from backends.local.platform import default_safe_mode_file
from backends.local.safemode import SafeModeMemory
safe = SafeModeMemory(default_safe_mode_file())
safe.remember(node / "model.gguf", "test")
modes["state dir"] = mode(safe.path.parent)
print(json.dumps(modes))
"""


def run_under_umask(umask: int, node_dir: Path) -> dict[str, str]:
    result = subprocess.run(
        [sys.executable, "-c", CREATE_EVERYTHING, str(node_dir)],
        cwd=REPO,
        env=os.environ.copy(),  # the test's own XDG directories (tests/conftest.py)
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: os.umask(umask),
    )
    assert result.returncode == 0, result.stderr
    modes: dict[str, str] = json.loads(result.stdout.splitlines()[-1])
    return modes


@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask-022", "umask-000"])
def test_private_files_and_folders_whatever_the_umask(umask: int, tmp_path: Path) -> None:
    modes = run_under_umask(umask, tmp_path / "node")
    folders = {name for name in modes if name.endswith("dir")}
    assert folders == {"data dir", "export dir", "config dir", "state dir"}
    wrong = {
        name: mode
        for name, mode in modes.items()
        if mode != ("0o700" if name in folders else "0o600")
    }
    assert wrong == {}, modes


def test_an_existing_world_readable_history_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    with Store(path):
        pass
    os.chmod(path, 0o644)  # as earlier versions created it
    with Store(path) as store:
        store.create_conversation("Private", "mock", "mock")
        sides = [path.with_name(path.name + s) for s in ("-wal", "-shm")]
        assert all(side.exists() for side in sides)
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (path, *sides)}
    assert modes == {"history.db": 0o600, "history.db-wal": 0o600, "history.db-shm": 0o600}
