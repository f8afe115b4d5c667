"""Errors of the on-device platform and of the model download manager.

The first group mirrors SpeziLLMLocal's errors (model file not found, context size
mismatch, not ready, generation failure); the rest cover what a GGUF file, a chat
template or a download can get wrong. Each says what happened, why and what to do.
"""

from __future__ import annotations

from backends.errors import LLMError


class LocalError(LLMError):
    """Base class of the on-device platform's errors."""


class ModelNotFoundError(LocalError):
    """The GGUF file (or the catalog model) is not on this machine."""

    description = "Model file not found."
    reason = "The specified model file could not be found on this machine."
    suggestion = "Download the model first, or pass the path of an existing .gguf file."

    def __init__(
        self,
        description: str | None = None,
        *,
        reason: str | None = None,
        suggestion: str | None = None,
        model: str = "",
    ) -> None:
        super().__init__(description, reason=reason, suggestion=suggestion)
        self.model = model
        """The catalog id or hub file that is missing (empty for a path)."""


class ContextSizeError(LocalError):
    """The configured context is larger than the context the model was trained on."""

    description = "The configured context size does not fit the model."
    reason = "The model was trained on a context that is smaller than the configured one."
    suggestion = (
        "Set a context size smaller than or equal to the model's trained context "
        "(`LocalSchema.n_ctx`), or leave it unset to use the model's own."
    )


class ModelNotReadyError(LocalError):
    """The model was used before it was loaded, or after it was unloaded."""

    description = "The model is not ready yet."
    reason = "The model needs to be loaded before it can generate."
    suggestion = "Wait for the model to finish loading, then try again."


class GenerationError(LocalError):
    """llama.cpp failed while it generated."""

    description = "Generating the reply failed."
    reason = "llama.cpp reported an error while generating the output."
    suggestion = (
        "Make sure the machine has enough free memory and CPU, then retry; a smaller "
        "model or context size helps."
    )


class EngineCrashedError(LocalError):
    """The engine process ended unexpectedly (a crash in llama.cpp, a kill, out of memory)."""

    description = "The on-device engine stopped unexpectedly."
    reason = "The process that runs llama.cpp ended while it was in use."
    suggestion = (
        "Send the message again: a fresh engine starts. If it keeps crashing, load the "
        "model with CPU extra buffer types off (`LocalSchema.cpu_extra_buffers`), a smaller "
        "context (`LocalSchema.n_ctx`) or another model."
    )


class CorruptModelError(LocalError):
    """The file is not a GGUF model, or it is truncated or damaged."""

    description = "The model file is damaged or not a GGUF model."
    reason = "llama.cpp could not read the file as a GGUF model."
    suggestion = "Delete the file and download it again."


class OutOfMemoryError(LocalError):
    """llama.cpp could not allocate the context (KV cache) or offload layers."""

    description = "The model could not be loaded into memory."
    reason = "llama.cpp could not allocate memory for the model's context."
    suggestion = (
        "Use a smaller context size (`LocalSchema.n_ctx`), offload fewer layers to the GPU "
        "(`LocalSchema.n_gpu_layers`), or pick a smaller model."
    )


class ChatTemplateMissingError(LocalError):
    """The model carries no chat template and none was configured."""

    description = "The model has no chat template."
    reason = (
        "The GGUF file does not include a chat template, so spezichat cannot tell how "
        "to format the conversation for it."
    )
    suggestion = (
        'Set one (`LocalSchema.chat_format`): "chatml", "gemma", "llama-3", "mistral-instruct", ...'
    )


class ToolsUnsupportedError(LocalError):
    """Functions were configured for a model whose template cannot call tools."""

    description = "This model cannot call functions."
    reason = "The model's chat template has no support for tool calls."
    suggestion = (
        "Send the conversation without functions, or pick a model whose template "
        "supports tools (for example Qwen2.5 Instruct or Llama 3.2 Instruct)."
    )


class PromptTooLongError(LocalError):
    """Even the newest message alone does not fit the context window."""

    description = "The message is too long for the model's context window."
    reason = "The system prompt and the last message together exceed the context size."
    suggestion = (
        "Shorten the message, or raise the context size (`LocalSchema.n_ctx`) up to what "
        "the model was trained on."
    )


# Downloads -------------------------------------------------------------------------------
class DownloadError(LocalError):
    """A model download failed."""

    description = "The model download failed."
    reason = "An error occurred while downloading the model."
    suggestion = "Check the network connection and run the download again; it resumes."


class UnknownModelError(DownloadError):
    """The model name is neither a catalog id, a `repo_id:filename` nor a file path."""

    description = "Unknown model."
    reason = "The name is not in the model catalog and is not a 'repo_id:filename'."
    suggestion = (
        "Pick a model of the catalog (`load_catalog`), or name a file on the hub as "
        "'owner/repo:file.gguf'."
    )


class RemoteFileNotFoundError(DownloadError):
    """The repository or the file does not exist on the hub."""

    description = "The model file was not found on the hub."
    reason = "The hub has no such repository, revision or file."
    suggestion = "Check the repository id and the file name (they are case-sensitive)."


class GatedModelError(DownloadError):
    """The repository is gated or private and the token does not grant access."""

    description = "Access to this model is restricted."
    reason = "The repository is gated or private and no valid access token was sent."
    suggestion = (
        "Accept the model's license on its hub page, create an access token and set it "
        "in HF_TOKEN (or run `hf auth login`), then download again."
    )


class ChecksumMismatchError(DownloadError):
    """The downloaded bytes do not hash to the hub's SHA-256."""

    description = "The downloaded file is corrupt."
    reason = "Its SHA-256 checksum does not match the one the hub published."
    suggestion = "Run the download again; the corrupt file was removed."


class InsufficientDiskSpaceError(DownloadError):
    """Not enough free disk space for the rest of the download."""

    description = "Not enough free disk space for the model."
    reason = "The download needs more space than the disk has free."
    suggestion = "Free some disk space or delete models you no longer use, then retry."


class OfflineError(DownloadError):
    """HF_HUB_OFFLINE is set, so nothing may be downloaded."""

    description = "Downloads are disabled (offline mode)."
    reason = "HF_HUB_OFFLINE is set, so spezichat does not contact the hub."
    suggestion = "Unset HF_HUB_OFFLINE to download, or use a model that is already here."


class DownloadCancelledError(DownloadError):
    """The download was cancelled; the partial file is kept for resuming."""

    description = "The download was cancelled."
    reason = "It was stopped before it finished; what arrived so far is kept."
    suggestion = "Run the same download again to resume where it stopped."
