"""One settings tree for the whole assistant.

Sources, highest priority first: constructor arguments, environment variables
(``ONSITE_`` prefix, ``__`` between levels, e.g. ``ONSITE_RETRIEVAL__TOP_K=8``), an
``onsite.toml`` file (``ONSITE_CONFIG`` or ``$ONSITE_HOME/onsite.toml`` or ``./onsite.toml``),
then the defaults written here. Every field says what it does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from assistant.llm.settings import LLMSettings
from tools.watch.alerts import AlertSettings
from tools.watch.settings import WatchSettings
from tools.push.settings import PushSettings
from tools.advice.settings import AdviceSettings
from knowledge.settings import (
    BUNDLED_MINILM,
    ChunkingSettings,
    EmbeddingSettings,
    IndexSettings,
    IngestSettings,
    RetrievalSettings,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)



QUESTION_CHARS_CEILING = 100_000  # no setting allows longer questions; the API schemas bound bodies by it


def default_home() -> Path:
    return Path(os.environ.get("ONSITE_HOME") or Path.home() / ".onsite")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentSettings(_Section):
    max_tool_calls: int = Field(5, ge=0, le=20, description="Tool calls allowed in one turn.")
    recursion_limit: int = Field(25, ge=5, le=200, description="LangGraph recursion limit of one turn.")
    deadline_s: float = Field(180.0, gt=0, description="Wall-clock limit of one turn, tools and model included.")
    passages: int = Field(5, ge=1, le=20, description="Retrieved passages put in front of the model.")
    evidence_tokens: int = Field(
        110, ge=30, le=4000, description="About this many prompt tokens of one passage shown to the model, cut to the "
        "sentences that share most words with the question (prompt tokens cost most on CPU)."
    )
    prompt_documents: int = Field(3, ge=1, le=20, description="Document passages shown to the model (of `passages`).")
    history_turns: int = Field(4, ge=0, le=50, description="Earlier turns of the conversation shown to the model "
                               "(0: every question on its own).")
    context_tokens: int = Field(1500, ge=0, le=100000, description="About this many tokens of earlier questions, "
                                "sources and answers the model keeps reading in a conversation (oldest dropped first).")
    rewrite_follow_ups: bool = Field(False, description="Let the model rewrite a follow-up into a standalone question "
                                     "(costs a model call and evicts the conversation from its cache; off: rules).")
    answer_max_tokens: int = Field(
        384, ge=16, le=8192,
        description="Tokens generated for one answer; a caller (e.g. /v1 max_tokens) may ask for fewer, never more.")
    max_question_chars: int = Field(
        2000, ge=10, le=QUESTION_CHARS_CEILING, description="Longest question accepted, in characters; longer ones are refused.")
    abstain: bool = Field(True, description="Abstain when the evidence does not support an answer.")
    judge_band: tuple[float, float] = Field(
        (0.0, 0.0), description="Answerability scores in [low, high) count as unsure: with a model loaded, the model "
        "is asked whether the sources answer. Off by default: the Qwen2.5-Coder models said yes to most questions "
        "whose documents had been removed (agxqa sample: abstention 0.33 with (0.35, 0.65) against ~0.8 without).")


class ApiSettings(_Section):
    host: str = Field("127.0.0.1", description="Address `onsite serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port `onsite serve` listens on.")
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Static API keys for clients other than the mini-program, each 'KEY', 'KEY:ROLE' or "
        "'KEY:ROLE:NAME' (role operator or admin; default operator). From the environment as "
        "ONSITE_API__API_KEYS or ONSITE_API_KEYS, comma-separated or a JSON list; both are used. "
        "Keys shorter than 16 characters are refused.",
    )
    keys_file: Path | None = Field(
        None,
        description="File of API keys: one 'KEY ROLE [NAME]' per line, '#' starts a comment. "
        "A relative path is under the data home.",
    )
    token_ttl_s: int = Field(
        900, ge=60, le=90 * 24 * 3600, description="Lifetime of one bearer token (and page cookie) we issue, in "
        "seconds; renewed while in use (POST /api/v1/auth/refresh; the page renews its cookie itself)."
    )
    page_idle_s: int = Field(
        3600, ge=60, le=24 * 3600, description="Lifetime of the chat page's session cookie: renewed while the "
        "page is used, so a tablet left idle longer asks for its key again. Every request still checks the "
        "session on the server (sign-out and revocation act at once)."
    )
    session_max_s: int = Field(
        12 * 3600, ge=300, le=7 * 24 * 3600, description="Absolute end of a sign-in session (one shift): no "
        "renewal goes past it; then sign in again. Sign-out and admins end sessions earlier."
    )
    token_secret_file: Path | None = Field(
        None,
        description="Key that signs our bearer tokens (HMAC-SHA256). None = <home>/api-token.key, created with "
        "mode 0600 on first use. Replacing the file signs everyone out.",
    )
    wechat_appid: str | None = Field(None, description="Mini-program AppID; WeChat login is off without it.")
    wechat_secret: SecretStr | None = Field(
        None, description="Mini-program AppSecret; never sent to clients or written to logs."
    )
    wechat_base_url: str = Field(
        "https://api.weixin.qq.com", description="WeChat API base URL (jscode2session lives under it)."
    )
    wechat_timeout_s: float = Field(10.0, gt=0, le=60, description="HTTP timeout of one call to WeChat.")
    wechat_default_role: Literal["operator", "admin"] = Field(
        "operator", description="Role of a person who signs in through WeChat."
    )
    wechat_admin_openids: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="WeChat openids that get the admin role (comma-separated or a JSON list)."
    )
    max_upload_mb: float = Field(
        20.0, gt=0, le=1024, description="Largest request body (uploads included); larger → 413."
    )
    rate_limit_per_minute: float = Field(
        60.0, ge=0, description="Requests per minute per client (signed-in principal, else IP); 0 = no limit."
    )
    rate_limit_burst: int = Field(20, ge=1, le=10_000, description="Requests a client may make at once before the per-minute rate applies.")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API (the mini-program needs none); empty = no CORS headers.",
    )
    metrics: Literal["off", "key", "open"] = Field(
        "key", description="/metrics: 'key' = admins only (an admin API key or bearer token), 'open' = anyone who "
        "can reach the port (e.g. a Prometheus without credentials on a closed network), 'off' = not served (404).",
    )
    docs: bool = Field(True, description="Serve the OpenAPI document (/openapi.json) and its pages (/docs, /redoc).")
    allow_open: bool = Field(
        False,
        description="Let `onsite serve` listen on a non-loopback address although no API key is configured, "
        "leaving the chat page open to anyone who can reach the port (sign-in to the page needs an API key). "
        "Off: such a start is refused; set ONSITE_API_KEYS (or --allow-open for one run).",
    )

    @field_validator("api_keys", "wechat_admin_openids", "cors_origins", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        """Lists from the environment: 'a,b' or a JSON list."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value


class Settings(BaseSettings):
    """The onsite settings tree."""

    model_config = SettingsConfigDict(
        env_prefix="ONSITE_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    home: Path = Field(default_factory=default_home, description="Data home: indexes, databases, models.")
    samples_dir: Path = Field(
        Path(__file__).resolve().parent.parent / "knowledge" / "samples",
        description="Bundled sample knowledge, built on first start of `make run`.",
    )
    site_profile: Path = Field(
        Path(__file__).resolve().parent.parent / "knowledge" / "samples" / "site-profile.toml",
        description="The site profile (zones, assets, sensors, limits), TOML or YAML.",
    )
    embedding: EmbeddingSettings = EmbeddingSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    ingest: IngestSettings = IngestSettings()
    index: IndexSettings = IndexSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    llm: LLMSettings = LLMSettings()
    agent: AgentSettings = AgentSettings()
    api: ApiSettings = ApiSettings()
    alerts: AlertSettings = AlertSettings()
    watch: WatchSettings = WatchSettings()  # the site watch that raises the alerts (tools/watch/watch.py)
    push: PushSettings = PushSettings()  # alerts and advice to webhooks and WeChat, via an outbox (tools/push/)
    advice: AdviceSettings = AdviceSettings()  # daily crop advice per greenhouse zone (assistant/advice.py)

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def sensors_db(self) -> Path:
        return self.home / "sensors.sqlite"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def conversations_db(self) -> Path:
        return self.home / "conversations.sqlite"

    @property
    def audit_db(self) -> Path:
        return self.home / "audit.sqlite"

    @property
    def workorders_db(self) -> Path:
        return self.home / "workorders.sqlite"

    @property
    def alerts_db(self) -> Path:
        return self.home / "alerts.sqlite"

    @property
    def push_db(self) -> Path:
        return self.home / "push.sqlite"  # the push outbox and its sources' cursors

    @property
    def advice_db(self) -> Path:
        return self.home / "advice.sqlite"  # the daily advice, one row per zone and day

    @property
    def watch_dir(self) -> Path:
        return self.home / "watch"  # the watch's per-asset models and its cursor

    @property
    def uploads_dir(self) -> Path:
        return self.home / "uploads"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = config_file()
        if toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)


def config_file() -> Path | None:
    """The onsite.toml in force, if any."""
    explicit = os.environ.get("ONSITE_CONFIG")
    if explicit:
        return Path(explicit)
    for candidate in (default_home() / "onsite.toml", Path.cwd() / "onsite.toml"):
        if candidate.is_file():
            return candidate
    return None


PRESETS: dict[str, dict[str, Any]] = {
    # Small edge box: fewer candidates, smaller chunks.
    "edge-small": {"retrieval": {"candidates": 30}, "chunking": {"max_tokens": 160}},
    # English-only sites: the bundled MiniLM embeds twice as fast as the multilingual default.
    "english": {"embedding": {"model": BUNDLED_MINILM, "languages": ["en"]}},
    # Multilingual embedder copied in by hand (bge-small-zh-v1.5 folder in the data home).
    "multilingual": {"embedding": {"model": "models/bge-small-zh-v1.5", "languages": ["zh", "en"]}},
}


def load_settings(preset: str | None = None, **overrides: Any) -> Settings:
    """Settings from env / toml, with an optional named preset underneath explicit overrides."""
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; known: {', '.join(sorted(PRESETS))}")
        merged = {**PRESETS[preset]}
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        overrides = merged
    return Settings(**overrides)
