"""User settings, stored as TOML under the platformdirs config directory.

Every field has a docstring: it is the documentation users read when they edit
``config.toml`` by hand. A file that is not TOML is reported with its path and line
instead of crashing. Each value is checked against its field's type when the file is
read: a wrong one (``timeout = "abc"``) and unknown keys and sections are reported in
:attr:`Settings.notice` and the default is used for them, so the app still starts.
Saving edits only the keys that changed and keeps the rest of the user's file, comments
included (:mod:`tui.settings_io`).
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from backends.errors import ConfigurationError
from tui import settings_io

APP_NAME = "spezichat"


def config_dir() -> Path:
    """Where config.toml lives (``$XDG_CONFIG_HOME/spezichat`` on Linux)."""
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    """Where the history database and downloaded models live."""
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def config_path() -> Path:
    return config_dir() / "config.toml"


@dataclass
class GeneralSettings:
    backend: str = ""
    """Backend used for new chats: "openai", "fog", "local" or "mock". Empty until onboarding."""
    model: str = ""
    """Model used for new chats, as the chosen backend names it."""
    system_prompt: str = "You are a helpful assistant. Answer concisely."
    """System prompt placed at the start of every new conversation."""
    temperature: float | None = None
    """Sampling temperature (0-2); unset uses the backend's default."""
    top_p: float | None = None
    """Nucleus sampling probability mass (0-1); unset uses the backend's default."""
    max_tokens: int | None = None
    """Longest reply in tokens; unset lets the backend decide."""
    tool_timeout: float = 60.0
    """Seconds a function call may run; then the model is told it timed out and goes on."""


@dataclass
class OpenAISettings:
    base_url: str = "https://api.openai.com/v1"
    """API base URL. OPENAI_BASE_URL overrides it. The API key is sent only here."""
    timeout: float = 60.0
    """Seconds to wait for the server before giving up on a request."""
    idle_timeout: float = 120.0
    """Seconds a reply may go without new text before it is stopped as stalled; keep-alive
    messages and a trickle of bytes do not count (the timeout above is per network read)."""
    max_concurrent_streams: int = 4
    """How many replies may stream at the same time."""
    test_model_access: bool = True
    """Check that the key can use the model (GET /models/{model}) before the first reply."""


@dataclass
class FogSettings:
    ca_cert: str = ""
    """Root CA certificate (PEM) that signed the fog node's TLS certificate."""
    expected_host: str = "spezillmfog.local"
    """Host name the node's certificate must carry (sent as SNI and Host header)."""
    token_command: str = ""
    """Command whose standard output is the bearer token (run again after a 401)."""
    token_timeout: float = 10.0
    """Seconds the token command may run; then it and everything it started are stopped."""
    allow_http: bool = False
    """Use plain-HTTP nodes on the network, but without the token (development only;
    loopback always may). The token goes over plain HTTP only to allow_http_nodes."""
    allow_http_nodes: list[str] = field(default_factory=list)
    """Plain-HTTP nodes on other hosts that may get the token unencrypted, by address:
    "HOST", "HOST:PORT" or "[IPv6]:PORT", e.g. ["192.168.1.20:11434"]. Anyone on the
    network can read it there; spezichat warns. Manual http:// nodes count as allowed."""
    discovery_timeout: float = 2.0
    """Seconds to browse mDNS for fog nodes before giving up."""
    manual_nodes: list[str] = field(default_factory=list)
    """Node URLs to use without mDNS (other subnets, SSH tunnels), e.g. "https://10.0.0.5:443"."""
    service_names: list[str] = field(default_factory=lambda: ["spezillmfog"])
    """Text that marks an mDNS service as a fog node, matched in its name or host (any case)."""
    interfaces: list[str] = field(default_factory=list)
    """Interface addresses to browse mDNS on, for example ["127.0.0.1"]; empty means all."""
    strategy: Literal["random", "least-busy", "ordered"] = "random"
    """Node choice: "random" (as SpeziLLM), "least-busy", or "ordered" (manual nodes first)."""
    max_streams_per_node: int = 2
    """Replies that may stream from one node at the same time; more wait or go elsewhere."""
    timeout: float = 60.0
    """Seconds to wait for a node to connect or to send the next piece of a reply."""
    idle_timeout: float = 120.0
    """Seconds a reply may go without new text before it is stopped as stalled; keep-alive
    messages and a trickle of bytes do not count (the timeout above is per network read)."""


@dataclass
class LocalSettings:
    n_gpu_layers: int | None = None
    """Layers offloaded to the GPU: -1 all, 0 none; unset means all when a GPU build is present."""
    n_ctx: int | None = None
    """Context window in tokens; unset uses the model's trained context, capped at 8192."""
    n_threads: int | None = None
    """CPU threads for inference; unset lets llama.cpp choose."""
    chat_format: str = ""
    """Chat template override (for example "gemma", "chatml"); empty uses the model's own."""
    chat_template: str = ""
    """A Jinja chat template of your own (instead of chat_format); empty: not used."""
    n_batch: int = 512
    """Prompt tokens processed per batch (larger is faster on GPUs, uses more memory)."""
    flash_attn: bool = False
    """Use flash attention (faster on GPUs that support it)."""
    seed: int | None = None
    """Sampling seed for reproducible replies; unset draws a random one each time."""
    top_k: int | None = None
    """Sample only from the k most likely tokens; unset uses llama.cpp's default (40)."""
    min_p: float | None = None
    """Drop tokens less likely than min_p times the top token; unset uses 0.05."""
    repeat_penalty: float | None = None
    """Penalty for repeating recent tokens (1.0 = none); unset uses llama.cpp's default."""
    repeat_last_n: int | None = None
    """How many recent tokens repeat_penalty looks back on (0 off, -1 the whole context);
    unset uses 64."""
    stop: list[str] = field(default_factory=list)
    """Strings that end a reply when the model writes them."""
    models_dir: str = ""
    """Folder for downloaded models; empty means "models" in the data directory."""
    cpu_extra_buffers: Literal["auto", "on", "off"] = "auto"
    """llama.cpp's CPU extra buffer types (weight repacking): "auto" turns them off on AMX
    CPUs, where they can crash llama.cpp, and for a model whose engine crashed with them on;
    "on" or "off" forces them."""


@dataclass
class UISettings:
    theme: str = "textual-dark"
    """Textual theme name."""
    show_sidebar: bool = True
    """Show the conversation list next to the chat."""
    keybindings: dict[str, str] = field(default_factory=dict)
    """Remapped keys by binding id, for example {"chat.new" = "ctrl+t"}; F1 lists the ids."""
    export_dir: str = ""
    """Folder for exported conversations; empty means "exports" in the data directory."""


McpValue = str | bool | int | float | list[str] | dict[str, str]
"""A value in an ``[mcp.servers.NAME]`` table (checked per server by backends.mcp.config)."""


@dataclass
class McpSettings:
    servers: dict[str, dict[str, McpValue]] = field(default_factory=dict)
    """MCP tool servers, one [mcp.servers.NAME] table each: command, args, env (stdio) or
    url, headers (streamable HTTP); enabled, timeout (seconds to start) and approve ("ask"
    or "always"). ${VAR} in args, env, url and headers reads the environment. Their tools
    are offered as NAME__tool; `spezichat mcp import FILE` adds another client's servers."""


@dataclass
class Settings:
    general: GeneralSettings = field(default_factory=GeneralSettings)
    openai: OpenAISettings = field(default_factory=OpenAISettings)
    fog: FogSettings = field(default_factory=FogSettings)
    local: LocalSettings = field(default_factory=LocalSettings)
    ui: UISettings = field(default_factory=UISettings)
    mcp: McpSettings = field(default_factory=McpSettings)
    notice: ConfigurationError | None = field(default=None, init=False, repr=False, compare=False)
    """What was wrong in the file when it was read (wrong types, unknown keys), or None."""
    _baseline: settings_io.Snapshot | None = field(
        default=None, init=False, repr=False, compare=False
    )
    """The values as read or last saved: :meth:`save` writes only the keys changed since."""

    @classmethod
    def sections(cls) -> dict[str, type[Any]]:
        """Each section's name (``general``, ...) and its dataclass."""
        return {
            f.name: f.default_factory  # type: ignore[misc]
            for f in dataclasses.fields(cls)
            if f.default_factory is not dataclasses.MISSING
        }

    @property
    def onboarded(self) -> bool:
        return bool(self.general.backend and self.general.model)

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        """Read settings from ``path`` (default: config.toml); missing file: defaults."""
        path = path or config_path()
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls()
        except OSError as exc:
            raise ConfigurationError(
                "The settings file could not be read.",
                reason=f"{path}: {exc.strerror or exc}",
                suggestion="Check the file's permissions, or move it away to start fresh.",
            ) from exc
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigurationError(
                "The settings file is not valid TOML.",
                reason=f"{path}: {exc}",
                suggestion="Fix the line named above, or delete the file to run onboarding again.",
            ) from exc
        return cls.from_toml(data, path)

    @classmethod
    def from_toml(cls, data: dict[str, Any], path: Path) -> Settings:
        """Settings from the parsed file at ``path``, each value checked against its type.

        A value of the wrong type keeps its default; it, unknown sections and unknown keys
        are described in :attr:`notice`, one line each, e.g.
        ``config.toml: [openai] timeout must be a number (got "abc")``.
        """
        sections = cls.sections()
        values, problems = settings_io.read_sections(sections, data, path.name)
        settings = cls()
        for name, found in values.items():
            target = getattr(settings, name)
            for key, value in found.items():
                setattr(target, key, value)
        settings.notice = settings_io.problems_notice(problems, path)
        settings._baseline = settings_io.snapshot(settings, sections)
        return settings

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        """Settings from ``data`` as given, unchecked (values of any type are kept)."""
        settings = cls()
        for name in cls.sections():
            values = data.get(name)
            if not isinstance(values, dict):
                continue
            target = getattr(settings, name)
            known = {f.name for f in dataclasses.fields(target)}
            for key, value in values.items():
                if key in known:
                    setattr(target, key, value)
        return settings

    def to_dict(self) -> dict[str, Any]:
        def clean(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items() if v is not None}
            return value

        return {name: clean(dataclasses.asdict(getattr(self, name))) for name in self.sections()}

    def save(self, path: Path | None = None) -> Path:
        """Write the settings changed since they were read into the file; returns its path.

        The file is read again and edited in place: only keys whose value changed here are
        written (a value equal to the default is not added), so the user's comments,
        commented-out lines, unknown keys and edits made meanwhile stay. The file is
        replaced atomically. A file that is no longer TOML is left alone
        (:class:`ConfigurationError`).
        """
        from backends.secrets import write_private_file

        path = path or config_path()
        try:
            text = path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            text = ""
        except UnicodeDecodeError as exc:
            raise ConfigurationError(
                "The settings could not be saved: the settings file is not UTF-8 text.",
                reason=f"{path}: {exc}",
                suggestion="Move the file away to start fresh; the settings apply until you quit.",
            ) from exc
        sections = self.sections()
        text = settings_io.updated_text(text, self, sections, self._baseline, path)
        # The config directory (0700 when created) and the file (0600) are the user's
        # alone: a token command or a base URL may carry credentials.
        write_private_file(path, text)
        self._baseline = settings_io.snapshot(self, sections)
        return path
