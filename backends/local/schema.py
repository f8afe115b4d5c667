"""The configuration of an on-device model: file, context, GPU offload and sampling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from backends.local.safemode import ExtraBuffers, check_mode
from backends.session import Schema


@dataclass(frozen=True, kw_only=True)
class LocalSchema(Schema):
    """Configuration of an on-device model. Unset values use the model's or llama.cpp's."""

    model: str
    """A .gguf path, a catalog id (``llama3.2-1b``) or ``repo_id:filename`` (downloaded)."""
    chat_format: str = ""
    """llama-cpp-python chat format ("chatml", "gemma", ...); empty uses the GGUF's template."""
    chat_template: str = ""
    """A Jinja chat template (Hugging Face style: ``messages``, ``bos_token``,
    ``add_generation_prompt``...) used instead of the GGUF's; excludes ``chat_format``."""
    n_gpu_layers: int | None = None
    """Layers offloaded to the GPU (-1 all, 0 none); unset: all when a GPU build is present."""
    n_ctx: int | None = None
    """Context window in tokens; unset: the trained context, capped at 8192."""
    n_batch: int = 512
    """Prompt tokens processed per batch."""
    n_threads: int | None = None
    """CPU threads; unset lets llama.cpp choose."""
    seed: int | None = None
    """Sampling seed for reproducible replies; unset draws a random one."""
    flash_attn: bool = False
    """Use flash attention (faster on GPUs that support it)."""
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None
    repeat_last_n: int | None = None
    """Recent tokens the repeat penalty looks at (llama.cpp's ``penalty_last_n``): 0 turns
    it off, -1 covers the whole context; unset: 64."""
    max_tokens: int | None = None
    """Longest reply in tokens; unset: until the model stops or the context is full."""
    stop: tuple[str, ...] = ()
    """Strings that end the reply when the model writes them."""
    cpu_extra_buffers: ExtraBuffers = "auto"
    """llama.cpp's CPU extra buffer types (weight repacking): "auto" turns them off on
    AMX CPUs, where they can crash, and after a crash they caused; "on"; "off"."""

    REPLY_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {
            "temperature",
            "top_p",
            "top_k",
            "min_p",
            "repeat_penalty",
            "repeat_last_n",
            "max_tokens",
            "seed",
            "stop",
        }
    )
    """The parameters that apply per reply: changing them keeps the loaded model."""

    def sampling(self) -> dict[str, Any]:
        """The sampling arguments for ``create_chat_completion`` that are set."""
        values: dict[str, Any] = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "min_p": self.min_p,
            "repeat_penalty": self.repeat_penalty,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }
        arguments = {key: value for key, value in values.items() if value is not None}
        if self.stop:
            arguments["stop"] = list(self.stop)
        return arguments

    def load_key(self) -> tuple[Any, ...]:
        """What identifies one loaded llama.cpp context."""
        return (
            self.model,
            self.chat_format,
            self.chat_template,
            self.n_gpu_layers,
            self.n_ctx,
            self.n_batch,
            self.n_threads,
            self.flash_attn,
            self.cpu_extra_buffers,
        )

    def load_request(self) -> dict[str, Any]:
        """The engine's load settings (see :mod:`backends.local.protocol`)."""
        return {
            "chat_format": self.chat_format,
            "chat_template": self.chat_template,
            "n_ctx": self.n_ctx,
            "n_batch": self.n_batch,
            "n_threads": self.n_threads,
            "n_gpu_layers": self.n_gpu_layers,
            "flash_attn": self.flash_attn,
            "extra_buffers": check_mode(self.cpu_extra_buffers),
        }
