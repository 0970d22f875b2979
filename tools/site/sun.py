"""Where the sun is: the solar elevation at the site's latitude and longitude, for telling a light
sensor's honest darkness (dusk comes before the profile's day ends in spring) from a dead sensor.
The same simple formula the simulator's sun uses (declination by day of year, solar time by
longitude; no equation of time: within a quarter of an hour, plenty for "is it dark")."""

from __future__ import annotations

import numpy as np

DAY_MS = 86_400_000


def sun_elevation_deg(latitude: float, longitude: float, ts_ms) -> np.ndarray:
    """Solar elevation in degrees (negative: below the horizon) at each epoch-ms time."""
    ts = np.asarray(ts_ms, dtype=np.int64)
    days = ts // DAY_MS
    doy = (days - np.datetime64("1970-01-01", "D").astype(np.int64)).astype("datetime64[D]")
    doy = (doy - doy.astype("datetime64[Y]")).astype(np.int64) + 1  # day of the year, 1-based (UTC)
    decl = np.radians(23.44) * np.sin(2 * np.pi * (284 + doy) / 365)
    solar_h = (ts % DAY_MS) / 3_600_000 + longitude / 15
    lat, hour_angle = np.radians(latitude), np.radians(15 * (solar_h - 12))
    sin_el = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hour_angle)
    return np.degrees(np.arcsin(np.clip(sin_el, -1.0, 1.0)))
