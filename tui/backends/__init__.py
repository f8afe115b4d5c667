"""The backend registry: every backend spezichat knows, each described in one place.

A backend is one module under ``tui/backends/`` holding a :class:`Backend` descriptor
(``BACKEND``), plus one line in :data:`REGISTRY`. The descriptor says everything the app,
the commands and the onboarding need to know about it:

* ``id``, ``label``, ``summary``: its name (in config.toml and for ``--backend``), its
  title in the onboarding's backend choice and one line of explanation under it;
* ``requires``: the packages it needs; :meth:`Backend.unavailable` says why it cannot
  work here (quick, no I/O: it runs while the backend choice is drawn);
* ``section``: its section of config.toml (``[openai]``), a field of
  :class:`tui.settings.Settings`; empty when it has none;
* ``platform`` and ``schema``: build its platform and a chat's schema from the settings
  (``tui.wiring.make_platform`` and ``make_schema`` call them);
* ``onboarding``: its setup steps (none: the onboarding does not offer it);
* ``warm_up``: modules its first reply imports, loaded on a thread beforehand
  (:mod:`tui.warmup`);
* ``list_models``: the rows of ``spezichat models`` (none: it has no model list);
* ``ask_options``: its own options of ``spezichat ask``.

Descriptor modules import nothing heavy (no textual, httpx, zeroconf, llama_cpp, rich):
each builder imports its backend when called, so ``spezichat --help`` stays fast. The
registry imports a descriptor module only when that backend is first looked up.
:meth:`Registry.register` (or the :meth:`Registry.registered` context manager) adds a
backend at run time, as tests do.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import argparse
    from types import TracebackType

    from backends.session import Platform, Schema
    from tui.onboarding.flow import StepFactory
    from tui.settings import Settings
    from tui.wiring import ChatOptions

HTTP_MODULES = ("httpx", "httpcore", "h11", "httpx_sse", "anyio", "anyio._backends._asyncio")
"""What the first request of an HTTP backend imports (for ``Backend.warm_up``)."""

PlatformBuilder = Callable[["Settings", Mapping[str, Any]], "Platform[Any]"]
"""``(settings, overrides) -> platform``; ``overrides`` are the backend's command-line
options (:attr:`AskOptions.read`), empty in the app."""
SchemaBuilder = Callable[["ChatOptions", "Settings", float], "Schema"]
"""``(options, settings, tool_timeout) -> schema`` for one chat; ``tool_timeout`` is
``[general] tool_timeout``, already checked."""
ModelLister = Callable[["Settings"], Coroutine[Any, Any, list[tuple[str, str]]]]
"""``async (settings) -> [(model id, detail), ...]`` for ``spezichat models``."""


# Descriptors are NamedTuples, not dataclasses: `spezichat --help` loads them, and the
# dataclasses module alone (with inspect) costs it about 5 ms.
class AskOptions(NamedTuple):
    """A backend's own options of ``spezichat ask`` (``--chat-format``, ``--ca-cert``)."""

    add: Callable[[argparse.ArgumentParser], None]
    """Adds the options to the parser, best as an argument group named after the backend."""
    read: Callable[[argparse.Namespace], dict[str, Any]]
    """The options given, keyed by their ``dest`` (``chat_format``); empty when none was.
    They reach the builders as ``ChatOptions.overrides`` and ``make_platform``'s
    ``overrides``."""
    exclusive: bool = False
    """Giving one of them with another backend is a usage error (else they are ignored)."""


def always_available() -> str | None:
    return None


class Backend(NamedTuple):
    """Everything spezichat needs to know about one backend (pass the fields by name)."""

    id: str
    """The name in ``[general] backend`` and for ``--backend`` ("openai")."""
    label: str
    """Its title in the onboarding's backend choice ("OpenAI")."""
    summary: str
    """One line of explanation under the title."""
    platform: PlatformBuilder
    schema: SchemaBuilder
    requires: tuple[str, ...] = ()
    """Import names of the packages it needs, each optionally with its pip name after a
    colon (``"llama_cpp:llama-cpp-python"``)."""
    section: str = ""
    """Its section of config.toml (a field of :class:`tui.settings.Settings`); empty: none."""
    onboarding: Callable[[], tuple[StepFactory, ...]] | None = None
    """Returns its setup step screens, in order (imported when called); the last one
    leaves ``[general] backend`` and ``model`` set. ``None``: not offered in the setup."""
    warm_up: tuple[str, ...] = ()
    """Modules the first reply imports; a thread imports them while the user types."""
    list_models: ModelLister | None = None
    """Lists its models for ``spezichat models``; ``None``: it has no model list."""
    ask_options: AskOptions | None = None
    """Its own options of ``spezichat ask``; ``None``: none."""
    check: Callable[[], str | None] = always_available
    """A further check beyond ``requires``: why it cannot work here, or ``None``."""

    def unavailable(self) -> str | None:
        """Why this backend cannot work here (a package missing), or ``None``.

        Looks for the packages without importing them; does no I/O beyond that.
        """
        import importlib.util

        for module in self.requires:
            name, _, pip_name = module.partition(":")
            if importlib.util.find_spec(name) is None:
                package = pip_name or name
                return f"the Python package {package} is not installed (pip install {package})"
        return self.check()


class Registry(Mapping[str, Backend]):
    """The known backends by id, in display order; descriptors load on first lookup."""

    def __init__(self, entries: Mapping[str, str], *, default: str) -> None:
        """``entries``: backend id -> ``"module:attribute"`` of its descriptor.
        ``default``: the backend ``spezichat ask`` uses before any is configured."""
        self._entries: dict[str, Backend | str] = dict(entries)
        self.default = default

    def __getitem__(self, backend_id: str) -> Backend:
        entry = self._entries[backend_id]
        if isinstance(entry, str):
            module, _, attribute = entry.partition(":")
            entry = getattr(importlib.import_module(module), attribute)
            if not isinstance(entry, Backend) or entry.id != backend_id:
                raise TypeError(f"{module}:{attribute} is not the Backend {backend_id!r}")
            self._entries[backend_id] = entry
        return entry

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, backend_id: object) -> bool:
        return backend_id in self._entries

    def register(self, backend: Backend) -> None:
        """Add ``backend`` after the others; its id must be new."""
        if backend.id in self._entries:
            raise ValueError(f"a backend named {backend.id!r} is registered already")
        self._entries[backend.id] = backend

    def unregister(self, backend_id: str) -> None:
        """Forget a backend (no error when there is none by that id)."""
        self._entries.pop(backend_id, None)

    def registered(self, backend: Backend) -> Registration:
        """``backend`` registered for the duration of a ``with`` block."""
        return Registration(self, backend)

    # spezichat ask -----------------------------------------------------------------------
    def add_ask_options(self, parser: argparse.ArgumentParser) -> None:
        """Add every backend's own options to the ``ask`` parser."""
        for backend in self.values():
            if backend.ask_options is not None:
                backend.ask_options.add(parser)

    def ask_overrides(self, backend_id: str, args: argparse.Namespace) -> dict[str, Any]:
        """The options of ``backend_id`` given on the command line.

        Raises :class:`ValueError` (a usage error's message) when an exclusive option of
        another backend was given.
        """
        chosen: dict[str, Any] = {}
        for backend in self.values():
            if backend.ask_options is None:
                continue
            given = backend.ask_options.read(args)
            if backend.id == backend_id:
                chosen = given
            elif given and backend.ask_options.exclusive:
                flags = ", ".join("--" + name.replace("_", "-") for name in given)
                verb = "applies" if len(given) == 1 else "apply"
                raise ValueError(f"{flags} {verb} to the {backend.id} backend only")
        return chosen


class Registration:
    """Registers a backend on entering a ``with`` block and forgets it on leaving."""

    def __init__(self, registry: Registry, backend: Backend) -> None:
        self.registry = registry
        self.backend = backend

    def __enter__(self) -> Backend:
        self.registry.register(self.backend)
        return self.backend

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.registry.unregister(self.backend.id)


REGISTRY = Registry(
    {
        "openai": "tui.backends.openai:BACKEND",
        "fog": "tui.backends.fog:BACKEND",
        "local": "tui.backends.local:BACKEND",
        "mock": "tui.backends.mock:BACKEND",
    },
    default="local",  # real, offline and free: the bundled starter model
)
"""Every backend, in the order the onboarding and messages list them."""

__all__ = [
    "HTTP_MODULES",
    "REGISTRY",
    "AskOptions",
    "Backend",
    "ModelLister",
    "PlatformBuilder",
    "Registration",
    "Registry",
    "SchemaBuilder",
    "always_available",
]
