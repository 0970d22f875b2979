"""The sun's elevation: the formula the light sensors' darkness is judged by."""

from datetime import UTC, datetime

import numpy as np

from tools.site.sun import sun_elevation_deg


def _ms(*args) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


def test_noon_and_midnight_in_shanghai_and_the_seasons():
    lat, lon = 31.2, 121.5  # solar noon near 03:55 UTC
    june, dec = sun_elevation_deg(lat, lon, [_ms(2026, 6, 21, 3, 55), _ms(2026, 12, 21, 3, 55)])
    assert abs(june - (90 - 31.2 + 23.44)) < 1.0 and abs(dec - (90 - 31.2 - 23.44)) < 1.0
    assert sun_elevation_deg(lat, lon, [_ms(2026, 6, 21, 15, 55)])[0] < -30  # local midnight


def test_an_april_evening_is_dark_before_the_profiles_day_ends():
    # 1 April, Shanghai (UTC+8): sunset about 18:15 local = 10:15 UTC; the sample profile's day ends at 19:00
    el = sun_elevation_deg(31.2, 121.5, np.array([_ms(2026, 4, 1, 9, 30), _ms(2026, 4, 1, 10, 45)]))
    assert el[0] > 5 and el[1] < 0
