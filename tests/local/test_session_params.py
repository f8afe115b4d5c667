"""SpeziLLM's local session parameters, with real llama.cpp inference on the Gemma file:
a raw Jinja chat template, ``repeat_last_n``, ``update()`` between replies without a
reload, and the parameter count (from the engine and from the GGUF header)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.errors import ConfigurationError
from backends.local.errors import CorruptModelError
from backends.local.gguf import describe_count, parameter_count
from backends.local.models import ModelStore, default_models_dir
from backends.local.platform import LocalPlatform
from backends.local.session import LocalSession
from tests.local.conftest import gemma_schema

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
GEMMA_PARAMETERS = 268_098_176
"""What llama.cpp's llama_model_n_params says about the Gemma 3 270M file."""

# The conversation's text, then a cue that is in no message: only this template adds it.
CUE_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ message['content'] }}\n{% endfor %}"
    "The capital of France is"
)
PLAIN_TEMPLATE = "{{ bos_token }}{% for message in messages %}{{ message['content'] }}{% endfor %}"
REPETITIVE = "one " * 12 + "one"


@pytest.fixture(scope="module")
def platform(gemma_path: Path) -> Iterator[LocalPlatform]:
    platform = LocalPlatform(
        store=ModelStore(gemma_path.parent / "unused-models"), max_loaded_models=2
    )
    yield platform
    platform.unload_all()


async def reply(session: LocalSession) -> str:
    return "".join([piece async for piece in session.generate()])


def ask(platform: LocalPlatform, gemma_path: Path, text: str, **schema: object) -> LocalSession:
    """A session whose replies stay out of its context, so every reply answers ``text``."""
    session = platform.session(gemma_schema(gemma_path, inject_into_context=False, **schema))
    session.context.append_user(text)
    return session


async def test_a_jinja_chat_template_renders_the_prompt(
    platform: LocalPlatform, gemma_path: Path
) -> None:
    session = ask(
        platform, gemma_path, "Geography quiz.", chat_format="", chat_template=CUE_TEMPLATE
    )

    text = await reply(session)

    # The model continues the template's own cue, which no message contains.
    assert text.strip().startswith("Paris"), text
    assert session.engine is not None and session.engine.info is not None
    assert session.engine.info.chat_template == CUE_TEMPLATE
    assert session.engine.info.chat_format is None
    # Another template is another prompt: the same question, without the cue.
    plain = ask(
        platform, gemma_path, "Geography quiz.", chat_format="", chat_template=PLAIN_TEMPLATE
    )
    assert not (await reply(plain)).strip().startswith("Paris")


async def test_a_broken_template_or_a_template_and_a_format_are_refused(
    platform: LocalPlatform, gemma_path: Path
) -> None:
    broken = ask(
        platform, gemma_path, "hi", chat_format="", chat_template="{% for m in messages %}"
    )
    with pytest.raises(ConfigurationError) as error:
        await reply(broken)
    assert "Jinja" in error.value.reason and error.value.suggestion
    both = ask(platform, gemma_path, "hi", chat_format="gemma", chat_template=PLAIN_TEMPLATE)
    with pytest.raises(ConfigurationError, match="chat format and a chat template"):
        await reply(both)


async def test_repeat_last_n_sets_the_window_of_the_repeat_penalty(
    platform: LocalPlatform, gemma_path: Path
) -> None:
    template = {"chat_format": "", "chat_template": PLAIN_TEMPLATE, "max_tokens": 12}
    unpenalised = await reply(ask(platform, gemma_path, REPETITIVE, **template))
    assert unpenalised.split() == ["one"] * 12  # greedy decoding keeps repeating

    # A strong penalty over no tokens at all is no penalty...
    session = ask(platform, gemma_path, REPETITIVE, repeat_penalty=1.8, repeat_last_n=0, **template)
    assert await reply(session) == unpenalised
    pid = session.engine.pid if session.engine is not None else None
    # ...and over the last 64 tokens it stops the repetition, in the same engine.
    session.update(repeat_last_n=64)
    penalised = await reply(session)
    assert penalised != unpenalised and penalised.split()[1:] != ["one"] * 11
    assert session.engine is not None and session.engine.pid == pid


async def test_update_changes_sampling_for_the_next_reply_without_a_reload(
    platform: LocalPlatform, gemma_path: Path
) -> None:
    session = ask(platform, gemma_path, "Write a poem about the sea.", max_tokens=12)
    greedy = await reply(session)
    engine = session.engine
    assert engine is not None
    processes = platform.processes

    session.update(temperature=1.6, top_k=200, top_p=1.0, seed=11)
    sampled = await reply(session)
    session.update(temperature=0.0)
    again = await reply(session)

    assert sampled != greedy  # hot sampling took effect...
    assert again == greedy  # ...and greedy decoding is back, exactly
    assert session.engine is engine and engine.alive and platform.processes == processes
    assert engine.generations >= 3


async def test_update_refuses_what_needs_a_reload(
    platform: LocalPlatform, gemma_path: Path
) -> None:
    session = ask(platform, gemma_path, "hi")
    before = session.schema
    for changes in ({"n_ctx": 1024}, {"chat_template": PLAIN_TEMPLATE}, {"temprature": 0.5}):
        with pytest.raises(ConfigurationError) as error:
            session.update(**changes)
        assert str(next(iter(changes))) in error.value.description and error.value.suggestion
    with pytest.raises(ConfigurationError) as error:
        session.update(repeat_last_n=-5)
    assert "repeat_last_n" in error.value.reason
    assert session.schema == before
    session.update(stop=["\n"], max_tokens=None)
    assert session.schema.stop == ("\n",) and session.schema.max_tokens is None


async def test_the_parameter_count_from_the_engine_and_from_the_header(
    platform: LocalPlatform, gemma_path: Path
) -> None:
    session = ask(platform, gemma_path, "The capital of France is", max_tokens=2)
    assert session.num_parameters is None  # not loaded yet
    await reply(session)

    assert session.num_parameters == GEMMA_PARAMETERS
    assert parameter_count(gemma_path) == GEMMA_PARAMETERS
    assert describe_count(GEMMA_PARAMETERS) == "268.1M"


def test_a_damaged_header_is_a_typed_error(gemma_path: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "cut.gguf"
    with gemma_path.open("rb") as source:
        truncated.write_bytes(source.read(200_000))  # inside the vocabulary
    with pytest.raises(CorruptModelError) as error:
        parameter_count(truncated)
    assert "ends inside its header" in error.value.reason
    not_gguf = tmp_path / "text.gguf"
    not_gguf.write_text("hello")
    with pytest.raises(CorruptModelError) as error:
        parameter_count(not_gguf)
    assert "does not start with 'GGUF'" in error.value.reason


def test_models_long_prints_the_parameter_count(gemma_path: Path) -> None:
    # A downloaded hub file outside the catalog, and one whose file is damaged.
    folder = default_models_dir() / "acme" / "tiny"
    folder.mkdir(parents=True)
    (folder / "gemma.gguf").symlink_to(gemma_path)
    (folder / "broken.gguf").write_bytes(b"GGUF\x03\x00\x00\x00")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "tui", "models", "--backend", "local", "--long"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    lines = dict(line.split("\t", 1) for line in done.stdout.splitlines())
    assert "268.1M parameters (268,098,176)" in lines["acme/tiny:gemma.gguf"]
    assert "parameters unknown" in lines["acme/tiny:broken.gguf"]
    # Catalog models that are not downloaded show the catalog's figure.
    assert "1.5B parameters" in lines["qwen2.5-1.5b"]
    shutil.rmtree(folder)


def test_the_config_file_template_and_window_reach_ask(gemma_path: Path) -> None:
    """`[local] chat_template` and `repeat_last_n` in config.toml are used by `ask`."""
    from tui.settings import Settings

    settings = Settings()
    settings.local.chat_template = CUE_TEMPLATE
    settings.local.repeat_last_n = 32
    settings.local.seed = 7
    settings.save()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            *(sys.executable, "-m", "tui", "ask", "--backend", "local"),
            *("--model", str(gemma_path), "--max-tokens", "4", "--temperature", "0"),
            "Geography quiz.",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("Paris"), done.stdout
