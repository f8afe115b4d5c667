"""Onboarding branch "fog node": an OpenAI-compatible server on the local network.

Three steps: the node's root CA certificate and the bearer token; a live list of the
nodes found over mDNS (name, address, TLS or not, models, latency, or why a node cannot
be used); the model, chosen from what the selected node serves. A typed token is stored
in the config directory (mode 0600); the CA path and the rest go to ``[fog]``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import Button, Input, OptionList, Static
from textual.widgets.option_list import Option

from backends.errors import LLMError
from backends.fog.auth import WHAT
from backends.secrets import Secret, write_private_file
from backends.untrusted import one_line, printable
from tui.advice import advice_in, app_advice
from tui.onboarding.flow import Branch, OnboardingState, OnboardingStep, branch_of

if TYPE_CHECKING:
    from backends.fog.config import FogConfig
    from backends.fog.discovery import FogNode

TOKEN = "fog.token"
"""State key: the token typed in the first step, a checked
:class:`~backends.secrets.Secret` (stored when the flow picks a model)."""
NODE = "fog.node"
"""State key: the node chosen in the second step (a FogNode)."""

_STATUS_CSS = """
    #fog-access-status, #fog-nodes-status { height: auto; }
    #fog-access-status.error { color: $error; }
"""


def _config(state: OnboardingState) -> FogConfig:
    """The fog configuration from the settings so far, with the typed token if any."""
    import dataclasses

    from backends.fog.auth import StaticToken
    from tui.wiring import fog_config

    config = fog_config(state.settings)
    typed = state.values.get(TOKEN)
    return dataclasses.replace(config, token=StaticToken(typed, FIELD)) if typed else config


FIELD = "the token field"
"""Where a typed token comes from, in errors."""


def typed_token(value: str) -> Secret | None:
    """The token typed in the field, checked; ``None`` when the field is empty."""
    from backends.fog.auth import FogInvalidTokenError

    if not value.strip():
        return None
    return Secret.checked(value, what=WHAT, source=FIELD, error=FogInvalidTokenError)


def store_token(token: str | Secret) -> Path:
    """Write the bearer token to the config directory, readable only by this user."""
    from tui.settings import config_dir
    from tui.wiring import FOG_TOKEN_FILE

    path = config_dir() / FOG_TOKEN_FILE
    secret = token if isinstance(token, Secret) else Secret(token)
    del token
    write_private_file(path, secret.reveal() + "\n")
    return path


class FogAccessStep(OnboardingStep):
    """The CA certificate that signed the node's TLS certificate, and the bearer token."""

    TITLE = "Fog node: certificate and token"
    INTRO = (
        "A fog node is an OpenAI-compatible server on your network (Ollama, llama.cpp "
        "server, vLLM) that spezichat finds over mDNS. Its TLS certificate is signed by "
        "the node's own root CA: give the path of that ca.crt (`spezichat fog init` "
        "writes it to <dir>/ca/ca.crt on the node). The token is the node's API key."
    )
    DEFAULT_CSS = _STATUS_CSS

    def compose_step(self) -> ComposeResult:
        fog = self.state.settings.fog
        env_ca = os.environ.get("SPEZICHAT_FOG_CA_CERT", "")
        yield Static("Root CA certificate (PEM file)")
        yield Input(fog.ca_cert or env_ca, placeholder="~/fog/ca.crt", id="fog-ca")
        yield Static("Bearer token (the node's API key)")
        typed: Secret | None = self.state.values.get(TOKEN)
        yield Input(
            typed.reveal() if typed is not None else "",
            placeholder="paste the token",
            password=True,
            id="fog-token",
        )
        hints = []
        if os.environ.get("SPEZICHAT_FOG_TOKEN", "").strip():
            hints.append("SPEZICHAT_FOG_TOKEN is set: leave the token empty to use it.")
        if fog.token_command:
            hints.append(f"Leave it empty to run the token command `{fog.token_command}`.")
        hints.append("Without a CA only plain-HTTP nodes on this computer can be used.")
        yield Static(Content(printable(" ".join(hints))), classes="onboarding-hint")
        yield Static("", id="fog-access-status")
        yield Button("Search the network", id="fog-search", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#fog-ca", Input).focus()

    @on(Input.Submitted, "#fog-ca")
    def next_field(self) -> None:
        self.query_one("#fog-token", Input).focus()

    @on(Input.Submitted, "#fog-token")
    @on(Button.Pressed, "#fog-search")
    def submit(self) -> None:
        from backends.fog.tls import ssl_context

        ca = self.query_one("#fog-ca", Input).value.strip()
        status = self.query_one("#fog-access-status", Static)
        path = Path(ca).expanduser() if ca else None
        try:
            if path is not None:
                ssl_context(path)  # exists and is a PEM certificate
            token = typed_token(self.query_one("#fog-token", Input).value)
        except LLMError as error:
            status.update(
                Content.assemble(
                    ("⚠ " + printable(error.description), "bold"),
                    printable(f"\n{error.reason}\n→ {advice_in(self.app, error)}"),
                )
            )
            status.add_class("error")
            return
        self.state.settings.fog.ca_cert = str(path) if path else ""
        self.state.values[TOKEN] = token  # a Secret: its repr is masked
        self.flow.advance()


def node_prompt(node: FogNode) -> Content:
    """One line per fact: name and where; then models and latency, or the problem.

    Names, models and errors come from the network: plain text, control characters shown.
    """
    where = one_line((node.url or (node.urls()[0] if node.addresses else "")).split("://", 1)[-1])
    security = "TLS" if node.tls else "plain HTTP"
    head = Content.assemble((one_line(node.name), "bold"), f"  {where}  ·  {security}")
    if node.status == "checking":
        return head + Content("\nchecking …")
    if node.status == "ok":
        models = one_line(", ".join(node.models)) or "no models listed"
        latency = f"{node.latency_ms:.0f} ms" if node.latency_ms is not None else ""
        return head + Content(f"\n{models}  ·  {latency}")
    problem = one_line(node.error.description) if node.error else "cannot be used"
    fix = f"\n→ {printable(app_advice(node.error))}" if node.error else ""
    return head + Content.assemble("\n", (f"⚠ {problem}", "bold"), fix)


def needs_consent(node: FogNode) -> bool:
    """A plain-HTTP node on another host, refused until the user allows it (the browser
    refuses no other node)."""
    return node.status == "refused" and not node.tls and not node.loopback


def _selectable(node: FogNode) -> bool:
    return node.status == "ok" or needs_consent(node)


class FogNodesStep(OnboardingStep):
    """The nodes found on the network, updated live while the step is shown."""

    TITLE = "Fog node: choose a node"
    INTRO = "Nodes appear as they answer. Choose one with the arrow keys and Enter."
    DEFAULT_CSS = _STATUS_CSS

    def compose_step(self) -> ComposeResult:
        yield OptionList(id="fog-nodes")
        yield Static("Searching the network …", id="fog-nodes-status")

    def on_mount(self) -> None:
        self._found: dict[str, FogNode] = {}
        self.query_one("#fog-nodes", OptionList).focus()

    @work(exclusive=True, group="fog-browse")
    async def browse(self) -> None:
        import asyncio

        from backends.fog.discovery import FogBrowser

        status = self.query_one("#fog-nodes-status", Static)
        try:
            config = _config(self.state)
            async with FogBrowser(config) as browser:
                browser.subscribe(lambda _event: self._show(browser.nodes))
                self._show(browser.nodes)
                found = await browser.wait_for(bool, config.discovery_timeout)
                if not found:
                    status.update(
                        Content(
                            "No fog node answered yet; still listening. Check that the node "
                            "runs (`spezichat fog serve` or `fog advertise`) on this network, "
                            "or add it to manual_nodes in the [fog] settings."
                        )
                    )
                await asyncio.Event().wait()  # keep the list live until the step closes
        except LLMError as error:
            status.update(
                Content.assemble(
                    ("⚠ " + printable(error.description), "bold"),
                    printable(f"\n{error.reason}\n→ {advice_in(self.app, error)}"),
                )
            )

    def _show(self, nodes: list[FogNode]) -> None:
        options = self.query_one("#fog-nodes", OptionList)
        highlighted = options.highlighted
        current = options.get_option_at_index(highlighted).id if highlighted is not None else None
        self._found = {node.key: node for node in nodes}
        options.clear_options()
        options.add_options(
            [
                Option(node_prompt(node), id=node.key, disabled=not _selectable(node))
                for node in nodes
            ]
        )
        usable = [n for n in nodes if n.status == "ok"]
        selectable = usable + [n for n in nodes if needs_consent(n)]
        if current in self._found and _selectable(self._found[current]):
            options.highlighted = options.get_option_index(current)
        elif selectable:
            options.highlighted = options.get_option_index(selectable[0].key)
        if nodes:
            self.query_one("#fog-nodes-status", Static).update(
                Content(f"{len(usable)} of {len(nodes)} nodes ready · still listening")
            )

    @on(OptionList.OptionSelected, "#fog-nodes")
    def chosen(self, event: OptionList.OptionSelected) -> None:
        node = self._found.get(event.option.id or "")
        if node is not None and needs_consent(node):
            self._ask_consent(node)
            return
        if node is None or node.status != "ok":
            return
        self.state.values[NODE] = node
        self.workers.cancel_group(self, "fog-browse")
        self.flow.advance()

    def _ask_consent(self, node: FogNode) -> None:
        """A plain-HTTP node on another host gets the token only after an explicit yes,
        which puts its addresses on ``[fog] allow_http_nodes``; the list is then
        searched again, and the node checked with the token."""
        from backends.fog.plain_http import allow_entry
        from tui.screens.dialogs import ConfirmDialog

        entries = [allow_entry(url) for url in node.urls()]

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            fog = self.state.settings.fog
            fog.allow_http_nodes = list(dict.fromkeys([*fog.allow_http_nodes, *entries]))
            self.browse()

        self.app.push_screen(
            ConfirmDialog(
                "Send the token unencrypted to this node?",
                f"{node.name} at {', '.join(entries)} uses plain HTTP. Its bearer token would "
                "cross the network unencrypted: anyone on the network can read it, and any "
                "machine can advertise itself as a fog node. Allow it only for a node and a "
                "network you trust; a node served over TLS (`spezichat fog init`) needs no "
                "such trust.",
                yes="Allow and send the token",
                no="Cancel",
                detail=f"Adds {', '.join(entries)} to allow_http_nodes in the [fog] settings.",
                id="fog-plain-http-consent",
            ),
            answered,
        )

    def on_screen_resume(self) -> None:
        # Shown (again, when coming back from the model step): listen to the network.
        self.browse()


class FogModelStep(OnboardingStep):
    """The models the chosen node serves."""

    TITLE = "Fog node: choose a model"
    INTRO = "These are the models the node lists. You can switch later with F3."

    def compose_step(self) -> ComposeResult:
        node = self.state.values.get(NODE)
        models: list[str] = list(node.models) if node is not None else []
        if models:
            yield OptionList(*(Option(Content(one_line(m)), id=m) for m in models), id="fog-models")
        else:
            yield Static("The node listed no models. Type the name of the model to use:")
            yield Input(placeholder="llama3.2", id="fog-model")

    def on_mount(self) -> None:
        if self.query("#fog-models"):
            options = self.query_one("#fog-models", OptionList)
            current = self.state.settings.general.model
            ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
            options.highlighted = ids.index(current) if current in ids else 0
            options.focus()
        else:
            self.query_one("#fog-model", Input).focus()

    @on(OptionList.OptionSelected, "#fog-models")
    def chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self._use(event.option.id)

    @on(Input.Submitted, "#fog-model")
    def typed(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self._use(event.value.strip())

    def _use(self, model: str) -> None:
        token = self.state.values.get(TOKEN)
        if token is not None:
            store_token(token)
        general = self.state.settings.general
        general.backend = "fog"
        general.model = model
        self.flow.advance()


def branch() -> Branch:
    """This backend's onboarding as registered (label, summary, steps: tui.backends.fog)."""
    from tui.backends import REGISTRY

    return branch_of(REGISTRY["fog"])
