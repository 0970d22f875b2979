"""Named GGUF models onsite knows how to fetch and check.

The SHA-256 pins are the Git LFS object ids of the files in the official Qwen repositories on
Hugging Face (the hash the Hub shows on each file's page). They could not be read from the Hub on
the development machines (no network); each was taken from several independent public projects
that pin the same file with the same byte size, and all agree. A download or a hand-copied file
that does not match its pin is refused, so a wrong pin fails closed rather than open.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CatalogueModel:
    name: str
    repo_id: str  # Hugging Face repository
    filename: str
    sha256: str | None  # None = no pin known; the file is then only checked if the settings pin it
    size_bytes: int | None
    quantization: str
    context_length: int  # trained context window; the runtime uses llm.llamacpp.n_ctx
    licence: str
    revision: str = "main"  # the pin, not the revision, is what guards the content
    description: str = ""

    @property
    def url(self) -> str:
        return f"https://huggingface.co/{self.repo_id}/resolve/{self.revision}/{self.filename}"


CATALOGUE: dict[str, CatalogueModel] = {
    m.name: m
    for m in (
        CatalogueModel(
            name="qwen2.5-1.5b-instruct-q4_k_m",
            repo_id="Qwen/Qwen2.5-1.5B-Instruct-GGUF",
            filename="qwen2.5-1.5b-instruct-q4_k_m.gguf",
            sha256="6a1a2eb6d15622bf3c96857206351ba97e1af16c30d7a74ee38970e434e9407e",
            size_bytes=1_117_320_736,
            quantization="Q4_K_M",
            context_length=32768,
            licence="Apache-2.0",
            description="Default: Chinese and English, about 26 tokens/s decode on 2 CPU cores.",
        ),
        CatalogueModel(
            name="qwen2.5-0.5b-instruct-q4_k_m",
            repo_id="Qwen/Qwen2.5-0.5B-Instruct-GGUF",
            filename="qwen2.5-0.5b-instruct-q4_k_m.gguf",
            sha256="74a4da8c9fdbcd15bd1f6d01d621410d31c6fc00986f5eb687824e7b93d7a9db",
            size_bytes=491_400_032,
            quantization="Q4_K_M",
            context_length=32768,
            licence="Apache-2.0",
            description="Smallest: about twice as fast, weaker answers; for boxes with little memory.",
        ),
    )
}

DEFAULT_MODEL = "qwen2.5-1.5b-instruct-q4_k_m"


def get(name: str) -> CatalogueModel | None:
    return CATALOGUE.get(name.strip().lower())
