"""Reading a site profile from TOML or YAML, with every problem reported in one error."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from tools.errors import ToolConfigError
from tools.site.profile import SiteProfile


class SiteProfileError(ToolConfigError):
    """The site profile file is missing, unreadable or inconsistent."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"site profile {source}: " + ("; ".join(problems) if len(problems) < 2
                                                      else "\n  - " + "\n  - ".join(problems)))


def _format_errors(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        for line in msg.splitlines():
            out.append(f"{loc}: {line}" if loc else line)
    return out


def parse_site_profile(data: dict, source: str = "<profile>") -> SiteProfile:
    try:
        return SiteProfile.model_validate(data)
    except ValidationError as exc:
        raise SiteProfileError(source, _format_errors(exc)) from None


def load_site_profile(path: str | Path) -> SiteProfile:
    """Read and validate a site profile (.toml, .yaml or .yml)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise SiteProfileError(str(p), [f"cannot read: {exc.strerror or exc}"]) from None
    try:
        if p.suffix.lower() == ".toml":
            data = tomllib.loads(raw.decode("utf-8"))
        elif p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(raw) or {}
        else:
            raise SiteProfileError(str(p), ["unsupported file type (use .toml, .yaml or .yml)"])
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SiteProfileError(str(p), [f"not valid TOML: {exc}"]) from None
    except Exception as exc:  # yaml.YAMLError without importing yaml at module level
        if isinstance(exc, SiteProfileError):
            raise
        raise SiteProfileError(str(p), [f"not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise SiteProfileError(str(p), ["the top level must be a table / mapping"])
    return parse_site_profile(data, str(p))
