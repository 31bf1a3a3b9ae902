"""Where the generated stores are: the demo city and its neighbourhoods (the search page's presets; the store
cluster centres of Berlin), and query locations for the benchmarks (`bench_places`)."""

from __future__ import annotations

from typing import Any

from . import geo, vocab

DEMO_CITY: dict[str, Any] = {"name": "Berlin", "lat": 52.5200, "lon": 13.4050}


def neighbourhoods(city: str = "Berlin") -> list[tuple[str, float, float]]:
    """(name, lat, lon) of the city's neighbourhoods (real coordinates); [] for a city without a table."""
    return [(name, float(lat), float(lon)) for name, lat, lon in vocab.NEIGHBOURHOODS.get(city, ())]


def bench_places(conn: Any, seed: int = 0) -> list[dict[str, Any]]:
    """Query locations for the seeded database at `conn`: for each city of the neighbourhood table that has
    stores, its centre and neighbourhoods (kind "centre" within 4 km of the centre, else "suburb"), and up to
    three towns 20-60 km out ("outskirts"). Deterministic; `seed` is accepted for the harness's signature."""
    del seed
    rows = conn.execute("SELECT DISTINCT city FROM store WHERE city IS NOT NULL").fetchall()
    present = {str(r[0]) for r in rows}
    out: list[dict[str, Any]] = []
    for name in vocab.NEIGHBOURHOODS:
        if name not in present:
            continue
        try:
            city = geo.find_city(name)
        except ValueError:
            continue
        out.append(
            {"kind": "centre", "city": city.name, "name": f"{city.name} centre", "lat": city.lat, "lon": city.lon}
        )
        for hood, lat, lon in neighbourhoods(name):
            d = geo.haversine_m(city.lat, city.lon, lat, lon)
            out.append(
                {"kind": "centre" if d < 4000 else "suburb", "city": city.name, "name": hood, "lat": lat, "lon": lon}
            )
        far = [
            t
            for t in geo.towns_near(city.lat, city.lon, 60.0)
            if geo.haversine_m(city.lat, city.lon, t.lat, t.lon) >= 20_000 and t.name in present
        ]
        for t in far[:3]:
            out.append({"kind": "outskirts", "city": city.name, "name": t.name, "lat": t.lat, "lon": t.lon})
    return out
