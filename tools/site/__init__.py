"""The site profile: zones, assets, sensors and the limits they are judged against.

Loaded from TOML or YAML and validated as a whole, so that a typo (a sensor in an unknown zone,
a duplicate id, ``low`` above ``high``) is reported with every other problem in one clear error.

Limits have three levels, the same ladder the site documents use:
``low``/``high`` is the normal (target) range, ``alarm_low``/``alarm_high`` the alarm and
``trip_low``/``trip_high`` the trip (equipment) or emergency (greenhouse) level; the TOML may
spell the last as ``emergency_low``/``emergency_high``. Comparisons are strict: "alarm above 32"
means a value > 32. A limit row applies to one crop + growth stage (for the greenhouse zones
growing it), one asset, or one sensor (the most specific wins), for one metric, in the ``day``,
the ``night`` or ``all`` periods. Day and night follow the site's (or the zone's) day hours in
the site's time zone. Naive datetimes are taken as UTC everywhere in onsite's sensor code.

Modules: ``layout`` (zones, assets, sensors), ``limits`` (the limit ladder), ``profile``
(``SiteProfile`` and its look-ups), ``loading`` (files in, ``SiteProfileError`` out).
"""

from tools.site.layout import (GROWING_KINDS, ID_PATTERN, METRIC_PATTERN, Asset, Sensor, Zone,  # noqa: F401
                               ZoneKind)
from tools.site.limits import LEVELS, ActiveLimit, Limit, LimitRow, LimitSet, Period  # noqa: F401
from tools.site.loading import SiteProfileError, load_site_profile, parse_site_profile  # noqa: F401
from tools.site.profile import SiteProfile  # noqa: F401

__all__ = ["GROWING_KINDS", "ID_PATTERN", "LEVELS", "METRIC_PATTERN", "ActiveLimit", "Asset", "Limit", "LimitRow",
           "LimitSet", "Period", "Sensor", "SiteProfile", "SiteProfileError", "Zone", "ZoneKind", "load_site_profile",
           "parse_site_profile"]
