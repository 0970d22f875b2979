"""One log filter that masks secret query parameters (WeChat's access token, app secret, login code,
session key) in httpx's and httpcore's request lines: they carry the query string. Installed once,
by whichever WeChat client is imported first (the login or the subscribe-message channel)."""

from __future__ import annotations

import logging
import re

_SECRET_PARAMS = re.compile(r"(?i)\b(access_token|secret|appsecret|js_code|session_key)=[^&\s\"']*")


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        redacted = _SECRET_PARAMS.sub(lambda m: f"{m.group(1)}=***", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def install_redaction() -> None:
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
