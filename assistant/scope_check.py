"""Names a person types are checked against the ones that exist, at every face (REST, OpenAI, CLI).

A scope with an unknown zone ("GH-9") or asset ("P-999"), or a search with a misspelt document kind
("manuals"), used to be answered as if it were empty: "I don't know" or "no evidence found" with
success. Each is refused here instead, with the list of valid names (``UnknownNameError``: 422 at
the API, whose ``data`` carries ``field``, ``value`` and ``valid``; exit code 2 on the command line).

Zones and assets come from the site profile; an alias ("温室1号", "irrigation pump") or an id in
another case is accepted and replaced by the id, which is what routing and the filters compare.
Crops are those of the profile's zones and limit rows; kinds are the index's document kinds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from assistant.errors import ValidationError
from knowledge.types import DOC_KINDS
from tools.site import SiteProfile

SHOWN_VALUE_CHARS = 64


class UnknownNameError(ValidationError):
    """A name that is not one of the valid ones (422, ``data.valid`` lists them)."""

    http_status = 422
    error_kind = "unknown_name"

    def __init__(self, field: str, value: str, valid: Iterable[str], what: str | None = None,
                 error_kind: str | None = None):
        valid = list(valid)
        shown = value if len(value) <= SHOWN_VALUE_CHARS else value[:SHOWN_VALUE_CHARS] + "…"
        what = what or field.rsplit(".", 1)[-1].lstrip("-")
        listed = ", ".join(valid) if valid else "none"
        super().__init__(f"Unknown {what} '{shown}' in {field}. Valid: {listed}.")
        if error_kind:
            self.error_kind = error_kind
        self.field, self.value, self.valid = field, shown, valid
        self.error_data = {"field": field, "value": shown, "valid": valid,
                           "errors": [{"loc": field.split("."), "msg": f"unknown {what}", "type": "unknown_name"}]}


def _lookup(value: str, items: Iterable[Any]) -> str | None:
    """The id of the item whose id or alias is ``value`` (case and surrounding spaces ignored)."""
    wanted = value.strip().casefold()
    for item in items:
        if wanted in (n.casefold() for n in (item.id, *getattr(item, "aliases", ()))):
            return item.id
    return None


def site_crops(site: SiteProfile) -> list[str]:
    return sorted({z.crop for z in site.zones if z.crop} | {r.crop for r in site.limits if r.crop})


def check_zone(value: str, site: SiteProfile, field: str = "zone") -> str:
    found = _lookup(value, site.zones)
    if found is None:
        raise UnknownNameError(field, value, [z.id for z in site.zones], "zone")
    return found


def check_asset(value: str, site: SiteProfile, field: str = "asset") -> str:
    found = _lookup(value, site.assets)
    if found is None:
        raise UnknownNameError(field, value, [a.id for a in site.assets], "asset")
    return found


def check_crop(value: str, site: SiteProfile, field: str = "crop") -> str:
    crops = site_crops(site)
    found = next((c for c in crops if c.casefold() == value.strip().casefold()), None)
    if found is None:
        raise UnknownNameError(field, value, crops, "crop")
    return found


def check_kind(value: str, field: str = "kind") -> str:
    kind = value.strip().lower()
    if kind not in DOC_KINDS:
        raise UnknownNameError(field, value, DOC_KINDS, "document kind")
    return kind


def check_scope(scope: dict[str, Any] | None, site: SiteProfile, prefix: str = "scope.") -> dict[str, Any]:
    """``scope`` with its zone, asset and crop checked against the site and given as ids.
    ``prefix`` names the fields in the message ('scope.' for a JSON body, '--' for options)."""
    out = dict(scope or {})
    for key, check in (("zone", check_zone), ("asset", check_asset), ("crop", check_crop)):
        if out.get(key) not in (None, ""):
            out[key] = check(str(out[key]), site, f"{prefix}{key}")
    return out


__all__ = ["UnknownNameError", "check_asset", "check_crop", "check_kind", "check_scope", "check_zone", "site_crops"]
