"""User settings, stored as TOML under the platformdirs config directory.

Every field has a docstring: it is the documentation users read when they edit
``config.toml`` by hand. Unknown keys are kept out; a broken file is reported with its
path and line instead of crashing.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.errors import ConfigurationError

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
    strategy: str = "random"
    """Node choice: "random" (as SpeziLLM), "least-busy", or "ordered" (manual nodes first)."""
    max_streams_per_node: int = 2
    """Replies that may stream from one node at the same time; more wait or go elsewhere."""
    timeout: float = 60.0
    """Seconds to wait for a node to connect or to send the next piece of a reply."""


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
    stop: list[str] = field(default_factory=list)
    """Strings that end a reply when the model writes them."""
    models_dir: str = ""
    """Folder for downloaded models; empty means "models" in the data directory."""
    cpu_extra_buffers: str = "auto"
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


@dataclass
class Settings:
    general: GeneralSettings = field(default_factory=GeneralSettings)
    openai: OpenAISettings = field(default_factory=OpenAISettings)
    fog: FogSettings = field(default_factory=FogSettings)
    local: LocalSettings = field(default_factory=LocalSettings)
    ui: UISettings = field(default_factory=UISettings)

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
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        settings = cls()
        for section in dataclasses.fields(cls):
            values = data.get(section.name)
            if not isinstance(values, dict):
                continue
            target = getattr(settings, section.name)
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

        return {
            section.name: clean(dataclasses.asdict(getattr(self, section.name)))
            for section in dataclasses.fields(self)
        }

    def save(self, path: Path | None = None) -> Path:
        """Write settings atomically; returns the path written."""
        import tomli_w

        from backends.secrets import write_private_file

        path = path or config_path()
        # The config directory (0700 when created) and the file (0600) are the user's
        # alone: a token command or a base URL may carry credentials.
        write_private_file(path, tomli_w.dumps(self.to_dict()))
        return path
