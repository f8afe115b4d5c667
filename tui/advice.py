"""What to do about an error, in the words of the place that shows it.

The backends are a library: their errors suggest what a library user can do ("pass its
path as `FogConfig.ca_cert`"). spezichat's command line and its app offer their own
ways (a flag, a key in ``config.toml``, a key binding, a screen), so each error shown
goes through :func:`cli_advice` or :func:`app_advice`:

- an error whose suggestion is still its type's own (the library had nothing more
  specific to say) gets the surface's advice for that type: an invalid OpenAI key says
  ``spezichat key set`` on the command line and names the setup in the app;
- a library setting or call in backticks (```FogConfig.idle_timeout```) becomes the
  surface's name for it ("idle_timeout in the [fog] section of config.toml", "--ca-cert");
- everything else is the library's suggestion as it is.

Suggestions may quote a server: the substitution only swaps our own backticked names
and never interprets the text (it stays plain text; callers neutralise it for display).
In-app advice names keys as the user's keymap has them (:func:`tui.keymap.key_label`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from backends.errors import LLMError
from tui.keymap import check_keymap, key_label

if TYPE_CHECKING:
    from textual.app import App

Advice = Callable[[LLMError, Mapping[str, str]], str | None]
"""Advice for a type: the error and the surface's key labels, ``None`` to pass on."""


def _config(section: str, key: str) -> str:
    return f"{key} in the [{section}] section of config.toml"


_BOTH: dict[str, str] = {
    "OpenAIPlatform.base_url": _config("openai", "base_url"),
    "OpenAIPlatform.timeout": _config("openai", "timeout"),
    "OpenAIPlatform.idle_timeout": _config("openai", "idle_timeout"),
    "FogConfig.idle_timeout": _config("fog", "idle_timeout"),
    "FogConfig.expected_host": _config("fog", "expected_host"),
    "FogConfig.manual_nodes": _config("fog", "manual_nodes"),
    "CommandToken.timeout": _config("fog", "token_timeout"),
    "LocalSchema.n_ctx": _config("local", "n_ctx"),
    "LocalSchema.n_gpu_layers": _config("local", "n_gpu_layers"),
    "LocalSchema.cpu_extra_buffers": 'cpu_extra_buffers = "off" in the [local] section '
    "of config.toml",
    "ModelStore(root)": _config("local", "models_dir"),
    "McpServerConfig": "its [mcp.servers.NAME] table in config.toml",
    "McpServerConfig.timeout": "timeout in its [mcp.servers.NAME] table",
    "McpServerConfig.command": "command in its [mcp.servers.NAME] table",
    "McpServerConfig.cwd": "cwd in its [mcp.servers.NAME] table",
    "McpServerConfig.url": "url in its [mcp.servers.NAME] table",
    "McpServerConfig.headers": "headers in its [mcp.servers.NAME] table",
    # A fog node is set up on its own machine with the command line, whichever surface
    # tells the user about it.
    "create_node_certificates": "`spezichat fog init`",
    "create_node_certificates(overwrite=True)": "`spezichat fog init --force`",
    "create_api_key": "`spezichat fog init`",
    "create_api_key(overwrite=True)": "`spezichat fog init --force`",
}
"""Library names → the words of both surfaces (settings in config.toml, node commands)."""

CLI_SETTINGS: dict[str, str] = {
    **_BOTH,
    "FogConfig.ca_cert": "--ca-cert, SPEZICHAT_FOG_CA_CERT or " + _config("fog", "ca_cert"),
    "FogConfig.allow_http_nodes": _config("fog", "allow_http_nodes")
    + " (or pass it with --allow-http-node)",
    "FogConfig.allow_http": "--insecure (allow_http = true in the [fog] section)",
    "FogConfig.token": "--token-command or " + _config("fog", "token_command"),
    "FogPlatform.list_models": "`spezichat discover`",
    "OpenAIPlatform.list_models": "`spezichat models --backend openai`",
    "LocalSchema.chat_format": "--chat-format, or " + _config("local", "chat_format"),
    "load_catalog": "`spezichat models --backend local`",
    "ModelStore.installed": "`spezichat models --backend local`",
    "ModelStore.delete": "`spezichat download --delete MODEL`",
    "McpManager.restart": "`spezichat mcp list` shows its state",
    "ServeOptions.api_key": "--api-key-file",
    "ServeOptions.model": "--model",
    "ServeOptions.n_ctx": "--n-ctx",
    "ServeOptions.port": "--port",
    "ServeOptions.listen": "--listen",
    "FogAdvertiser.port": "--port",
    "FogAdvertiser.name": "--name",
    "FogAdvertiser.interfaces": "--interface",
    "FogAdvertiser.host": "--host",
}
"""Library names → the command line's flags, commands and config keys."""

APP_SETTINGS: dict[str, str] = {
    **_BOTH,
    "FogConfig.ca_cert": "the CA certificate field of the fog setup (or ca_cert in the [fog] "
    "section of config.toml)",
    "FogConfig.allow_http_nodes": _config("fog", "allow_http_nodes"),
    "FogConfig.allow_http": "allow_http = true in the [fog] section of config.toml",
    "FogConfig.token": "the fog setup ({palette} → Change backend), or "
    + _config("fog", "token_command"),
    "FogPlatform.list_models": "{model}",
    "OpenAIPlatform.list_models": "{model}",
    "LocalSchema.chat_format": _config("local", "chat_format"),
    "load_catalog": "On-device models: {palette}",
    "ModelStore.installed": "On-device models: {palette}",
    "ModelStore.delete": "On-device models: {palette}",
    "McpManager.restart": "on the MCP servers screen: {palette}",
}
"""Library names → the app's words; ``{palette}`` and the like become the user's keys."""

_APP_KEYS = {
    "palette": "app.palette",
    "model": "chat.model",
    "settings": "chat.settings",
    "retry": "chat.retry",
}
"""Placeholders of the app's advice → the key bindings they name."""


def _default(cls: type[LLMError], text: str) -> Advice:
    """``text`` for an error that still has ``cls``'s own suggestion."""

    def advise(error: LLMError, keys: Mapping[str, str]) -> str | None:
        return text.format(**keys) if error.suggestion == cls.suggestion else None

    return advise


@functools.cache
def _tables() -> tuple[dict[type[LLMError], Advice], dict[type[LLMError], Advice]]:
    """The advice per error type: (command line, app). Imports the backends' errors."""
    from backends.errors import LLMError as Base
    from backends.fog.errors import (
        FogError,
        FogModelNotFoundError,
        FogNodeNotFoundError,
        FogUnauthorizedError,
    )
    from backends.local.errors import (
        ChatTemplateMissingError,
        CorruptModelError,
        ModelNotFoundError,
        ToolsUnsupportedError,
    )
    from backends.mcp.errors import McpConfigError, McpError
    from backends.openai.errors import (
        InvalidAPIKeyError,
        MissingAPIKeyError,
        RequestRejectedError,
    )

    def insecure_cli(error: LLMError, keys: Mapping[str, str]) -> str | None:
        entry = error.allow_entry if isinstance(error, FogError) else ""
        if not entry:
            return None
        return (
            "Best, serve the node over TLS (`spezichat fog init`). If you trust this node "
            f'and the network, allow it: pass --allow-http-node {entry}, or add "{entry}" '
            "to allow_http_nodes in the [fog] section of config.toml; --insecure uses it "
            "without the token."
        )

    def insecure_app(error: LLMError, keys: Mapping[str, str]) -> str | None:
        entry = error.allow_entry if isinstance(error, FogError) else ""
        if not entry:
            return None
        return (
            "Best, serve the node over TLS (`spezichat fog init` on the node). If you trust "
            "this node and the network, choose it in the fog setup (command palette "
            f"{keys['palette']} → Change backend), which asks and allows it, or add "
            f'"{entry}" to allow_http_nodes in the [fog] section of config.toml.'
        )

    def model_cli(error: LLMError, keys: Mapping[str, str]) -> str | None:
        if error.suggestion != ModelNotFoundError.suggestion:
            return None
        name = (error.model if isinstance(error, ModelNotFoundError) else "") or "MODEL"
        return (
            f"Download the model first (`spezichat download {name}`), or pass the path of "
            "an existing .gguf file."
        )

    template_tail = '(or "gemma", "llama-3", "mistral-instruct", ...)'
    cli: dict[type[LLMError], Advice] = {
        FogError: insecure_cli,
        MissingAPIKeyError: _default(
            MissingAPIKeyError,
            "Store one with `spezichat key set`, or set the OPENAI_API_KEY variable.",
        ),
        InvalidAPIKeyError: _default(
            InvalidAPIKeyError,
            "Check the key at https://platform.openai.com/api-keys, then store the right "
            "one with `spezichat key set` or set OPENAI_API_KEY.",
        ),
        RequestRejectedError: _default(
            RequestRejectedError,
            "Check the options and the model parameters in config.toml (the server names "
            "the problem).",
        ),
        FogNodeNotFoundError: _default(
            FogNodeNotFoundError,
            "Start a node (`spezichat fog serve` or `spezichat fog advertise`) on this "
            "network, run `spezichat discover` to check, or add its URL to manual_nodes "
            "in the [fog] section of config.toml.",
        ),
        FogUnauthorizedError: _default(
            FogUnauthorizedError,
            "Provide a valid token: SPEZICHAT_FOG_TOKEN, --token-command, or token_command "
            "in the [fog] section of config.toml.",
        ),
        FogModelNotFoundError: _default(
            FogModelNotFoundError,
            "Download the model on the node (for Ollama: `ollama pull MODEL`), or pick one "
            "that `spezichat discover` lists for the node.",
        ),
        ModelNotFoundError: model_cli,
        CorruptModelError: _default(
            CorruptModelError,
            "Delete the file and download it again (`spezichat download --delete MODEL`, "
            "then `spezichat download MODEL`).",
        ),
        ChatTemplateMissingError: _default(
            ChatTemplateMissingError,
            'Set one: chat_format = "chatml" in the [local] section of config.toml '
            f"{template_tail}, or --chat-format on the command line.",
        ),
        ToolsUnsupportedError: _default(
            ToolsUnsupportedError,
            "Leave out --tools (and the MCP servers' tools: --no-mcp) for this model, or "
            "pick a model whose template supports tools (for example Qwen2.5 Instruct or "
            "Llama 3.2 Instruct).",
        ),
        McpConfigError: _default(
            McpConfigError,
            "Fix the server's [mcp.servers.NAME] table in config.toml (see README, MCP).",
        ),
        McpError: _default(McpError, "Run `spezichat mcp list` to see the servers' state."),
    }
    app: dict[type[LLMError], Advice] = {
        FogError: insecure_app,
        MissingAPIKeyError: _default(
            MissingAPIKeyError,
            "Enter a key in the setup (command palette {palette} → Change backend → "
            "OpenAI), or set OPENAI_API_KEY before starting spezichat.",
        ),
        InvalidAPIKeyError: _default(
            InvalidAPIKeyError,
            "Check the key at https://platform.openai.com/api-keys, then enter the right "
            "one in the setup (command palette {palette} → Change backend → OpenAI).",
        ),
        RequestRejectedError: _default(
            RequestRejectedError,
            "Check the model parameters in the settings ({settings}); the server names the "
            "problem.",
        ),
        FogNodeNotFoundError: _default(
            FogNodeNotFoundError,
            "Start a node on this network (`spezichat fog serve` there), or add its URL to "
            "manual_nodes in the [fog] section of config.toml; then retry ({retry}).",
        ),
        FogUnauthorizedError: _default(
            FogUnauthorizedError,
            "Enter a valid token in the fog setup (command palette {palette} → Change "
            "backend → Fog), or set SPEZICHAT_FOG_TOKEN or token_command in the [fog] "
            "section of config.toml.",
        ),
        FogModelNotFoundError: _default(
            FogModelNotFoundError,
            "Download the model on the node (for Ollama: `ollama pull MODEL`), or pick one "
            "the node has with {model}.",
        ),
        ModelNotFoundError: _default(
            ModelNotFoundError,
            "Download it in On-device models (command palette {palette}), or pick another "
            "model with {model}.",
        ),
        CorruptModelError: _default(
            CorruptModelError,
            "Delete the file and download it again in On-device models (command palette "
            "{palette}).",
        ),
        ChatTemplateMissingError: _default(
            ChatTemplateMissingError,
            'Set one: chat_format = "chatml" in the [local] section of config.toml '
            f"{template_tail}.",
        ),
        ToolsUnsupportedError: _default(
            ToolsUnsupportedError,
            "Start spezichat without --tools and turn the MCP servers off, or pick a model "
            "whose template supports tools with {model} (for example Qwen2.5 Instruct or "
            "Llama 3.2 Instruct).",
        ),
        McpConfigError: _default(
            McpConfigError,
            "Fix the server's [mcp.servers.NAME] table in config.toml (see README, MCP).",
        ),
        McpError: _default(
            McpError, "Open the MCP servers screen (command palette {palette} → MCP servers)."
        ),
        Base: _default(Base, "Retry ({retry}); if it keeps failing, restart spezichat."),
    }
    return cli, app


_NAME = re.compile(r"`([^`\n]+)`")


def _by_type(
    error: LLMError, table: Mapping[type[LLMError], Advice], keys: Mapping[str, str]
) -> str | None:
    for cls in type(error).__mro__:
        advise = table.get(cls)
        if advise is not None:
            text = advise(error, keys)
            if text is not None:
                return text
    return None


def _translated(suggestion: str, names: Mapping[str, str], keys: Mapping[str, str]) -> str:
    def swap(match: re.Match[str]) -> str:
        words = names.get(match.group(1))
        return match.group(0) if words is None else words.format(**keys)

    return _NAME.sub(swap, suggestion)


def cli_advice(error: LLMError) -> str:
    """What to do about ``error``, in the command line's words (flags, commands, keys)."""
    no_keys: Mapping[str, str] = {}
    by_type = _by_type(error, _tables()[0], no_keys)
    return by_type if by_type is not None else _translated(error.suggestion, CLI_SETTINGS, no_keys)


def app_advice(error: LLMError, keymap: Mapping[str, str] | None = None) -> str:
    """What to do about ``error``, in the app's words: its screens and the user's keys.

    ``keymap`` is the user's usable ``[ui.keybindings]`` (binding id → keys), so that a
    remapped key shows as the user pressed it.
    """
    keys = {name: key_label(binding, keymap) for name, binding in _APP_KEYS.items()}
    by_type = _by_type(error, _tables()[1], keys)
    return by_type if by_type is not None else _translated(error.suggestion, APP_SETTINGS, keys)


def keymap_of(app: App[Any]) -> dict[str, str]:
    """The usable key remapping of a running spezichat app (empty for any other app)."""
    from tui.app import SpeziChatApp

    if not isinstance(app, SpeziChatApp):
        return {}
    usable, _problems = check_keymap(app.settings.ui.keybindings)
    return usable


def advice_in(app: App[Any], error: LLMError) -> str:
    """:func:`app_advice` with the keys of ``app``."""
    return app_advice(error, keymap_of(app))
