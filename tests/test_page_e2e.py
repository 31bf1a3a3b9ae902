"""The "search near me" page end to end: headless Chromium against the real app, database and model.

The app runs under uvicorn in a thread on a free port, built by `create_app` over a migrated database seeded
with a dozen products (vectors from the real encoder over `compose_text`, as the worker writes them) and stores
placed with geographiclib at known distances and bearings from the Kreuzberg preset. The browser types, picks
the preset and reads what the page shows; the test asks the API the same question (the exact URL the page
requested, read from the browser's resource timing) and compares names and distances as displayed.
Screenshots (desktop and phone width) go to `test-artifacts/`.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import psycopg
import pytest
import uvicorn
from geographiclib.geodesic import Geodesic
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from embeddings.encoder import Encoder, load_encoder
from embeddings.text import compose_text
from search_service.api.app import create_app
from search_service.api.page import demo_presets
from search_service.api.params import MAX_OFFSET
from search_service.db.cluster import free_port
from search_service.engine.text import INVISIBLE_CHARS
from search_service.settings import Settings
from tests.page_checks import contrasts, focus_order_jumps, hidden_when_focused, layout_problems

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
READY_TIMEOUT_S = 180
# A page's wait: generous, as a CI run beside other work holds this 2-core machine at a load of ~10 (a search there
# takes seconds); a wait that passes returns as soon as its state is there, so the margin costs nothing.
WAIT_S = 90
HTTP_TIMEOUT_S = 60  # the test's own requests to the API
PRESET = "Kreuzberg"
CONTROLS = ["q", "location", "locate", "radius", "mode", "category", "in-stock", "sort", "delivers"]

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs Debian's chromium and chromium-driver (scripts/setup.sh installs them)",
    ),
]

# (store name) -> (distance from the preset in metres, azimuth in degrees, active)
STORES: dict[str, tuple[float, float, bool]] = {
    "Kiez Hardware": (400.0, 0.0, True),
    "Spree Baumarkt": (1800.0, 90.0, True),
    "Südstern Drogerie": (3500.0, 225.0, True),
    "Randberg Markt": (8000.0, 180.0, True),  # outside the default 5 km
    "Closed Corner Shop": (250.0, 300.0, False),
}

CATEGORIES: list[tuple[str, str | None]] = [
    ("Home & DIY", None),
    ("Plumbing", "Home & DIY"),
    ("Tools", "Home & DIY"),
    ("Food", None),
    ("Drinks", "Food"),
    ("Pantry", "Food"),
    ("Health & beauty", None),
    ("Household", None),
]


@dataclass
class Product:
    name: str
    brand: str | None
    description: str
    category: str
    listings: list[tuple[str, float, int]]  # (store, price, quantity)


CATALOGUE: list[Product] = [
    Product(
        "Faucet washer set",
        "FixPro",
        "Assorted rubber seals and O-rings for leaking faucets and mixer valves.",
        "Plumbing",
        [
            ("Kiez Hardware", 3.49, 12),
            ("Spree Baumarkt", 3.29, 4),
            ("Südstern Drogerie", 2.99, 7),
            ("Randberg Markt", 2.49, 30),
        ],
    ),
    Product(
        "PTFE thread seal tape",
        "Tesla Seal",
        "White sealing tape for threaded pipe joints.",
        "Plumbing",
        [("Spree Baumarkt", 1.99, 25)],
    ),
    Product(
        "Adjustable pipe wrench",
        "Forge",
        "Heavy-duty wrench for pipes and fittings.",
        "Plumbing",
        [("Südstern Drogerie", 17.9, 2)],
    ),
    Product(
        "Claw hammer 16 oz",
        "Forge",
        "Steel claw hammer with fibreglass handle.",
        "Tools",
        [("Kiez Hardware", 14.95, 3)],
    ),
    Product(
        "Cordless drill 18 V",
        "Voltix",
        "Drill driver with two batteries and a charger.",
        "Tools",
        [("Spree Baumarkt", 89.0, 1), ("Kiez Hardware", 94.5, 2)],
    ),
    Product(
        "Oat drink barista edition",
        "Avena",
        "Plant-based, lactose-free oat beverage. Vegan.",
        "Drinks",
        [("Kiez Hardware", 2.29, 0), ("Spree Baumarkt", 2.19, 40)],
    ),
    Product(
        "Whole bean coffee 500 g",
        "Röstwerk",
        "Medium roast arabica beans.",
        "Pantry",
        [("Spree Baumarkt", 11.49, 9), ("Südstern Drogerie", 12.99, 5)],
    ),
    Product("Sourdough loaf", None, "Crusty rye sourdough bread baked daily.", "Pantry", [("Kiez Hardware", 4.2, 6)]),
    Product(
        "Paracetamol 500 mg tablets",
        "Medix",
        "Pain and fever relief, 20 tablets.",
        "Health & beauty",
        [("Südstern Drogerie", 2.95, 20)],
    ),
    Product(
        "Sunscreen SPF 50",
        "Solis",
        "Water-resistant sun protection lotion.",
        "Health & beauty",
        [("Südstern Drogerie", 9.95, 8), ("Randberg Markt", 8.5, 3)],
    ),
    Product(
        "AA alkaline batteries, 8 pack",
        "Voltix",
        "Long-lasting batteries for remotes and toys.",
        "Household",
        [("Spree Baumarkt", 6.49, 15)],
    ),
    Product("Folding umbrella", None, "Compact windproof umbrella.", "Household", [("Closed Corner Shop", 12.0, 4)]),
]


@dataclass
class Seeded:
    origin: tuple[float, float]
    store_points: dict[str, tuple[float, float]]


def seed(url: str, encoder: Encoder, origin: tuple[float, float]) -> Seeded:
    geod = Geodesic.WGS84
    parents = dict(CATEGORIES)
    with psycopg.connect(url, autocommit=True) as conn:
        cat_ids: dict[str, int] = {}
        for position, (name, parent) in enumerate(CATEGORIES):
            row = conn.execute(
                "INSERT INTO category (parent_id, name, slug, position) VALUES (%s, %s, %s, %s) RETURNING id",
                (cat_ids[parent] if parent else None, name, name.lower().replace(" ", "-"), position),
            ).fetchone()
            assert row is not None
            cat_ids[name] = row[0]

        store_ids: dict[str, uuid.UUID] = {}
        points: dict[str, tuple[float, float]] = {}
        for name, (dist, azimuth, active) in STORES.items():
            g = geod.Direct(origin[0], origin[1], azimuth, dist)
            points[name] = (g["lat2"], g["lon2"])
            row = conn.execute(
                "INSERT INTO store (name, store_type, city, country_code, location, is_active) "
                "VALUES (%s, 'shop', 'Berlin', 'DE', ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, %s) "
                "RETURNING id",
                (name, g["lon2"], g["lat2"], active),
            ).fetchone()
            assert row is not None
            store_ids[name] = row[0]

        def path_of(category: str) -> list[str]:
            path: list[str] = []
            node: str | None = category
            while node is not None:
                path.insert(0, node)
                node = parents[node]
            return path

        texts = [
            compose_text(
                name=p.name,
                brand=p.brand,
                category_path=path_of(p.category),
                description=p.description,
                attributes={},
            )
            for p in CATALOGUE
        ]
        vectors = encoder.encode(texts)
        for product, vector in zip(CATALOGUE, vectors, strict=True):
            row = conn.execute(
                "INSERT INTO product_master (name, brand, description, category_id, ai_vector, ai_model, "
                "ai_embedded_at) VALUES (%s, %s, %s, %s, %s::vector, %s, now()) RETURNING id",
                (
                    product.name,
                    product.brand,
                    product.description,
                    cat_ids[product.category],
                    "[" + ",".join(f"{float(v):.7f}" for v in vector) + "]",
                    encoder.model_id,
                ),
            ).fetchone()
            assert row is not None
            for store, price, quantity in product.listings:
                conn.execute(
                    "INSERT INTO store_product (store_id, product_master_id, price, currency, quantity, is_active) "
                    "VALUES (%s, %s, %s, 'EUR', %s, true)",
                    (store_ids[store], row[0], price, quantity),
                )
        conn.execute("ANALYZE")
    return Seeded(origin=origin, store_points=points)


# --- what the page shows, computed the same way as app.js
def format_distance(m: float | None) -> str:
    if m is None:
        return ""
    return f"{math.floor(m + 0.5)} m" if m < 1000 else f"{m / 1000:.1f} km"


# --- fixtures
@pytest.fixture(scope="module")
def origin() -> tuple[float, float]:
    preset = next(p for p in demo_presets().presets if p.name == PRESET)
    return (preset.lat, preset.lon)


@pytest.fixture(scope="module")
def server(make_database: Callable[..., str], origin: tuple[float, float]) -> Iterator[str]:
    """Base URL of the real app (uvicorn in a thread) over a seeded database, once /readyz says ready."""
    url = make_database()
    settings = Settings.from_env({**os.environ, "DATABASE_URL": url})
    encoder = load_encoder(settings.encoder)
    seed(url, encoder, origin)
    with psycopg.connect(url, autocommit=True) as conn:  # 8 km away, delivering within 10 km
        conn.execute("UPDATE store SET delivery_radius_m = 10000 WHERE name = 'Randberg Markt'")
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, encoder=encoder), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="page-e2e-uvicorn", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = ""
    while True:
        try:
            response = httpx.get(base + "/readyz", timeout=5)
            if response.status_code == 200:
                break
            last = response.text
        except httpx.HTTPError as exc:
            last = repr(exc)
        assert thread.is_alive(), "uvicorn stopped"
        assert time.monotonic() < deadline, f"never ready: {last}"
        time.sleep(0.2)
    # The process's first search embeds its query and warms the caches (seconds on a loaded machine): paid here, not
    # inside the first test's wait for the page's answer.
    warm = httpx.get(base + "/v1/search", params={"q": "warm up", "lat": origin[0], "lon": origin[1]}, timeout=180)
    assert warm.status_code == 200, warm.text
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    profile = tempfile.mkdtemp(prefix="plinqy-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
        "--lang=en-US",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# --- helpers
def wait_for(driver: WebDriver, what: str, condition: Callable[[WebDriver], Any], timeout: float = WAIT_S) -> Any:
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)
    except TimeoutException:
        status = driver.find_element(By.ID, "status").text
        raise AssertionError(f"timed out waiting for {what}; status says: {status!r}") from None


def open_page(driver: WebDriver, base: str, query: str = "") -> None:
    driver.get(base + "/" + query)
    # search_requests counts the page's resource timing entries, which stop at 250 by default: a slow machine's
    # keystrokes, each a request of their own, could fill it and a count wait for ever
    driver.execute_script("performance.setResourceTimingBufferSize(100000);")
    wait_for(
        driver,
        "the page to load presets and categories",
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true",
    )


# No search scheduled or in flight: the results' aria-busy is "true" from the keystroke (the debounce's pause
# included) until the latest search's answer is drawn.
SETTLED = (
    "document.getElementById('results').getAttribute('aria-busy') === 'false' && "
    "!document.body.classList.contains('is-loading')"
)


def settled(driver: WebDriver) -> bool:
    """No search scheduled or in flight: the debounce timer fired and the latest answer is rendered."""
    return bool(driver.execute_script("return " + SETTLED + ";"))


def suggestions_ready(driver: WebDriver) -> bool:
    """The suggestion list is open and answers the box's text: no keystroke's list is still to come (aria-busy),
    so it is not redrawn (its option unpointed, its buttons stale) under what the test does next."""
    return bool(
        driver.execute_script(
            "const s = document.getElementById('suggestions');"
            "return !s.hidden && s.getAttribute('aria-busy') !== 'true';"
        )
    )


def suggestions_settled(driver: WebDriver) -> bool:
    """No keystroke's suggestion list is still to come (drawn, hidden or dropped)."""
    return driver.find_element(By.ID, "suggestions").get_attribute("aria-busy") != "true"


# Scrolls the element into the window (its foot, else its middle: the controls and the radar are sticky) and says
# whether a click at its centre reaches it, with no suggestion list still to come that could open over it meanwhile.
_CLICKABLE_HERE = """
const e = arguments[0], list = document.getElementById('suggestions');
const reached = () => {
  const r = e.getBoundingClientRect(), at = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return at !== null && e.contains(at);
};
e.scrollIntoView({block: 'end', inline: 'nearest'});
if (!reached()) e.scrollIntoView({block: 'center', inline: 'nearest'});
return list.getAttribute('aria-busy') !== 'true' && reached();
"""


def press(driver: WebDriver, what: str, target: tuple[str, str] | WebElement) -> None:
    """Click `target` once it is shown, enabled and uncovered: a click on an element present but not yet
    interactable raised ElementNotInteractableException, one on a covered element went to whatever lay over it (a
    suggestion list opening under load: a suggestion picked, not the button), and a disabled button ignores it."""
    clickable = expected_conditions.element_to_be_clickable(target)

    def ready(d: WebDriver) -> WebElement | bool:
        element = clickable(d)
        return element if element and d.execute_script(_CLICKABLE_HERE, element) else False

    wait_for(driver, f"{what} to be clickable", ready).click()


def last_search_url(driver: WebDriver) -> str:
    urls = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).filter(n => n.includes('/v1/search?'));"
    )
    assert urls, "the page made no search request"
    return str(urls[-1])


def search_requests(driver: WebDriver) -> int:
    return int(
        driver.execute_script(
            "return performance.getEntriesByType('resource').filter(e => e.name.includes('/v1/search?')).length;"
        )
    )


def type_query(driver: WebDriver, text: str) -> None:
    box = driver.find_element(By.ID, "q")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    box.send_keys(text)


def wait_results(driver: WebDriver, query: str) -> list[WebElement]:
    """Wait until the page shows the answer to `query` (not an older one) and return the result items. The state and
    the status are read in one script: read apart, an answer could be drawn between them."""

    def done(d: WebDriver) -> bool:
        status = d.execute_script("return " + SETTLED + " ? document.getElementById('status').innerText : null;")
        return status is not None and f"“{query}”" in status

    wait_for(driver, f"results for {query!r}", done)
    return driver.find_elements(By.CSS_SELECTOR, "#results li.result")


def api_answer(page_url: str) -> dict[str, Any]:
    response = httpx.get(page_url, timeout=HTTP_TIMEOUT_S)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def save_screenshot(driver: WebDriver, path: Path) -> None:
    assert driver.save_screenshot(str(path)), f"could not save {path}"
    assert path.stat().st_size > 5000


# --- tests
def test_page_is_self_contained(server: str) -> None:
    page = httpx.get(server + "/", timeout=HTTP_TIMEOUT_S)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    head = httpx.head(server + "/", timeout=HTTP_TIMEOUT_S)  # an uptime check's HEAD got 405
    assert head.status_code == 200 and head.content == b"" and head.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset, kind in (("/static/app.js", "javascript"), ("/static/style.css", "text/css")):
        response = httpx.get(server + asset, timeout=HTTP_TIMEOUT_S)
        assert response.status_code == 200, asset
        assert kind in response.headers["content-type"], asset
        # Nothing from a CDN, a font service or a tile server: the only absolute URL is the SVG namespace.
        text = response.text.replace("http://www.w3.org/2000/svg", "")
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, asset
    assert "https://" not in page.text and "http://" not in page.text.replace("http://www.w3.org/2000/svg", "")

    presets = httpx.get(server + "/v1/presets", timeout=HTTP_TIMEOUT_S).json()
    assert presets["city"] == "Berlin"
    names = [p["name"] for p in presets["presets"]]
    assert {"Mitte", "Kreuzberg", "Prenzlauer Berg", "Neukölln"} <= set(names)
    assert all(52.3 < p["lat"] < 52.7 and 13.0 < p["lon"] < 13.8 for p in presets["presets"])


def test_search_near_a_preset_matches_the_api(
    server: str, browser: WebDriver, artifacts: Path, origin: tuple[float, float]
) -> None:
    driver = browser
    open_page(driver, server)

    # Every input has a label; the status region is polite and live.
    unlabelled = driver.execute_script(
        "return [...document.querySelectorAll('input, select')].filter(e => !e.labels || !e.labels.length)"
        ".map(e => e.id);"
    )
    assert unlabelled == []
    status = driver.find_element(By.ID, "status")
    assert status.get_attribute("aria-live") == "polite"
    assert "Type what you are looking for" in status.text

    # The category tree is in the picker, children indented under their parents.
    options = driver.execute_script("return [...document.getElementById('category').options].map(o => o.textContent);")
    assert options[0] == "All categories"
    assert options.index("\u00a0\u00a0\u00a0└ Plumbing") == options.index("Home & DIY") + 1
    assert options.index("Food") < options.index("\u00a0\u00a0\u00a0└ Pantry")

    Select(driver.find_element(By.ID, "location")).select_by_visible_text(PRESET)
    query = "something to fix a dripping tap"
    before = search_requests(driver)
    type_query(driver, query)  # one keystroke at a time: the debounce must collapse them
    items = wait_results(driver, query)
    requests = search_requests(driver) - before
    assert 1 <= requests <= 3, f"{requests} search requests for {len(query)} keystrokes: not debounced"

    # The page asked for what the inputs say.
    page_url = last_search_url(driver)
    asked = parse_qs(urlsplit(page_url).query)
    assert asked["q"] == [query]
    assert float(asked["lat"][0]) == pytest.approx(origin[0]) and float(asked["lon"][0]) == pytest.approx(origin[1])
    assert asked["radius_m"] == ["5000"] and asked["mode"] == ["hybrid"] and asked["in_stock"] == ["true"]

    # … and shows what the API answers to that question.
    body = api_answer(page_url)
    assert body["results"], "the API found nothing; the seed or the engine changed"
    assert body["results"][0]["product"]["name"] == "Faucet washer set"
    shown_names = [li.find_element(By.CSS_SELECTOR, ".name").text for li in items]
    assert shown_names == [hit["product"]["name"] for hit in body["results"]]

    first = items[0]
    first_hit = body["results"][0]
    rows = first.find_elements(By.CSS_SELECTOR, "li.store")
    shown = [
        (r.find_element(By.CSS_SELECTOR, ".store-name").text, r.find_element(By.CSS_SELECTOR, ".distance").text)
        for r in rows
    ]
    expected = [(s["name"], format_distance(s["distance_m"])) for s in first_hit["stores"]]
    assert shown == expected
    # Nearest first, the 8 km store is outside the 5 km radius: 400 m, 1.8 km, 3.5 km.
    assert [d for _, d in shown] == ["400 m", "1.8 km", "3.5 km"]
    assert first.find_element(By.CSS_SELECTOR, ".brand").text == "FixPro"
    score = first.find_element(By.CSS_SELECTOR, ".score")
    # read as "score 0.032", the word visually hidden: an aria-label on a plain span is prohibited, readers said
    # the bare number
    assert score.get_attribute("aria-label") is None
    assert score.get_attribute("textContent") == f"score {first_hit['score']:.3f}"
    assert score.find_element(By.CSS_SELECTOR, ".visually-hidden").get_attribute("textContent") == "score "
    assert "€3.49" in rows[0].text and "12 in stock" in rows[0].text
    badge = driver.find_element(By.ID, "badge")
    assert badge.is_displayed() and badge.text.startswith(body["strategy"] + " · ") and badge.text.endswith(" ms")

    # The radar: the first result is selected, its three stores placed by bearing and distance.
    assert first.get_attribute("aria-current") == "true"
    dots = wait_for(
        driver,
        "the radar's store dots",
        lambda d: (
            d.find_elements(By.CSS_SELECTOR, "#radar .store-dot")
            if len(d.find_elements(By.CSS_SELECTOR, "#radar .store-dot")) == 3
            else False
        ),
    )
    north = dots[0].find_element(By.TAG_NAME, "circle")  # Kiez Hardware: 400 m due north of a 5 km circle
    assert float(north.get_attribute("cx") or "nan") == pytest.approx(0, abs=0.5)
    assert float(north.get_attribute("cy") or "nan") == pytest.approx(-8, abs=0.5)
    east = dots[1].find_element(By.TAG_NAME, "circle")  # Spree Baumarkt: 1.8 km due east
    assert float(east.get_attribute("cx") or "nan") == pytest.approx(36, abs=0.5)
    assert float(east.get_attribute("cy") or "nan") == pytest.approx(0, abs=0.5)

    save_screenshot(driver, artifacts / "page-desktop.png")

    # Keyboard: results are focusable, arrows move between them, Enter selects one for the radar.
    assert first.get_attribute("tabindex") == "0"
    second = items[1]
    driver.execute_script("arguments[0].focus();", first)
    driver.switch_to.active_element.send_keys(Keys.ARROW_DOWN)
    assert driver.switch_to.active_element == second
    second.send_keys(Keys.ENTER)
    assert second.get_attribute("aria-current") == "true" and first.get_attribute("aria-current") == "false"
    assert f"Selected {shown_names[1]}" in driver.find_element(By.ID, "status").text
    wait_for(driver, "the radar caption", lambda d: shown_names[1] in d.find_element(By.ID, "radar-caption").text)
    # the name is isolated: a right-to-left name pulled the colon and the counts after it across
    for where in ("radar-caption", "status"):
        assert driver.find_element(By.ID, where).find_element(By.TAG_NAME, "bdi").text == shown_names[1]


def test_latest_query_wins(server: str, browser: WebDriver) -> None:
    """A query typed over an unfinished one: the page shows the answer to the last one only."""
    driver = browser
    open_page(driver, server, "?near=Kreuzberg")
    box = driver.find_element(By.ID, "q")
    before = search_requests(driver)
    box.send_keys("cordless drill")
    # its request is in flight (the spinner) or answered … (a fixed 0.3 s could end before the debounce had fired)
    wait_for(
        driver,
        "the first query's search to start",
        lambda d: (
            d.execute_script("return document.body.classList.contains('is-loading');") or search_requests(d) > before
        ),
    )
    type_query(driver, "oat milk")  # … when the next one starts
    items = wait_results(driver, "oat milk")
    body = api_answer(last_search_url(driver))
    assert [li.find_element(By.CSS_SELECTOR, ".name").text for li in items] == [
        hit["product"]["name"] for hit in body["results"]
    ]
    assert items[0].find_element(By.CSS_SELECTOR, ".name").text == "Oat drink barista edition"
    # In stock only (the default): the 0-quantity listing at Kiez Hardware is not offered.
    assert "Kiez Hardware" not in items[0].text


def test_the_results_and_the_list_are_busy_until_the_box_s_text_is_answered(server: str, browser: WebDriver) -> None:
    """The results were marked busy (aria-busy) only once the debounced search ran: for 250 ms after a keystroke the
    last answer read as the answer to the text typed, to a screen reader and to these tests' waits, which a loaded
    machine stretches. The suggestion list had no such mark: an earlier keystroke's list could be redrawn under a
    click or an arrow key. Both are busy now from the keystroke until the answer to the box's text is drawn."""
    driver = browser
    open_page(driver, server, "?near=" + PRESET + "&q=milk")
    wait_results(driver, "milk")
    marks = driver.execute_script(
        "const q = document.getElementById('q'); q.focus(); q.value = 'oat milk';"
        "q.dispatchEvent(new Event('input', {bubbles: true}));"
        "return [document.getElementById('results').getAttribute('aria-busy'),"
        " document.getElementById('suggestions').getAttribute('aria-busy'),"
        " document.body.classList.contains('is-loading')];"
    )
    assert marks == ["true", "true", False], marks  # a search and a list to come, no request yet
    wait_results(driver, "oat milk")  # not busy once answered (the wait reads aria-busy "false")
    wait_for(driver, "the list for “oat milk”", suggestions_settled)


def test_empty_state_in_keyword_mode(server: str, browser: WebDriver) -> None:
    driver = browser
    open_page(driver, server, "?near=Kreuzberg")
    Select(driver.find_element(By.ID, "mode")).select_by_value("keyword")
    type_query(driver, "xylophone")
    wait_for(driver, "the empty state", lambda d: settled(d) and d.find_elements(By.CSS_SELECTOR, "#results .empty"))
    assert "No products found for “xylophone”" in driver.find_element(By.ID, "status").text
    assert "Nothing found within 5 km of Kreuzberg" in driver.find_element(By.CSS_SELECTOR, "#results .empty").text
    assert parse_qs(urlsplit(last_search_url(driver)).query)["mode"] == ["keyword"]


def test_bad_request_shows_the_api_message(server: str, browser: WebDriver, artifacts: Path) -> None:
    """A query pasted with a tab in it (a cell copied from a spreadsheet): the input keeps the tab, the page
    sends it as typed and the API refuses it with a 400 whose message the page shows."""
    driver = browser
    open_page(driver, server, "?near=Kreuzberg")
    pasted = "tap\twasher"
    driver.execute_script(
        "const q = document.getElementById('q'); q.focus(); q.value = arguments[0];"
        "q.dispatchEvent(new InputEvent('input', {bubbles: true, inputType: 'insertFromPaste'}));",
        pasted,
    )
    error = wait_for(
        driver,
        "the error box",
        lambda d: (
            d.find_element(By.ID, "error") if settled(d) and d.find_element(By.ID, "error").is_displayed() else False
        ),
    )
    page_url = last_search_url(driver)
    assert parse_qs(urlsplit(page_url).query)["q"] == [pasted]
    response = httpx.get(page_url, timeout=HTTP_TIMEOUT_S)
    assert response.status_code == 400
    problem = response.json()["error"]
    assert problem["parameter"] == "q"
    assert problem["message"] in error.text
    assert error.get_attribute("role") == "alert"
    assert "The query " + problem["message"] in error.text
    assert driver.find_element(By.ID, "status").text == ""  # said once, by the alert: the status said it again
    box = driver.find_element(By.ID, "q")  # the refused field is marked and described by the error
    assert box.get_attribute("aria-invalid") == "true"
    assert box.get_attribute("aria-describedby") == "q-hint error"
    assert driver.find_elements(By.CSS_SELECTOR, "#results li.result") == []
    save_screenshot(driver, artifacts / "page-error.png")

    # Fixing the query clears the error.
    type_query(driver, "tap washer")
    wait_results(driver, "tap washer")
    assert not driver.find_element(By.ID, "error").is_displayed()
    assert box.get_attribute("aria-invalid") is None and box.get_attribute("aria-describedby") == "q-hint"


def test_phone_width(server: str, browser: WebDriver, artifacts: Path) -> None:
    """A phone, and a laptop at 200 % zoom (640 px): one column, nothing wider than the screen, and Tab goes down
    the page (the facets were drawn after the results while first in the document: Tab went down, then back up)."""
    driver = browser
    try:
        for width, phone in ((375, True), (640, False)):
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": 844, "deviceScaleFactor": 2 if phone else 1, "mobile": phone},
            )
            open_page(driver, server, "?near=Kreuzberg&q=" + "something to fix a dripping tap".replace(" ", "+"))
            items = wait_results(driver, "something to fix a dripping tap")
            assert items
            assert driver.execute_script("return window.innerWidth;") == width
            overflow = driver.execute_script("return document.documentElement.scrollWidth;")
            assert overflow <= width, f"horizontal scrolling at {width} px ({overflow} px)"
            # Controls stack above the results; everything fits the screen's width.
            for element_id in ("q", "location", "radius", "mode", "category", "facets", "results", "radar"):
                rect = json.loads(
                    driver.execute_script(
                        "return JSON.stringify(document.getElementById(arguments[0]).getBoundingClientRect());",
                        element_id,
                    )
                )
                assert rect["left"] >= 0 and rect["right"] <= width + 0.5, (element_id, rect)
            assert focus_order_jumps(driver) == [], width
        save_screenshot(driver, artifacts / "page-640.png")
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride", {"width": 375, "height": 844, "deviceScaleFactor": 2, "mobile": True}
        )
        save_screenshot(driver, artifacts / "page-phone.png")
        driver.execute_script("document.getElementById('results-heading').scrollIntoView();")
        save_screenshot(driver, artifacts / "page-phone-results.png")
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


@pytest.mark.parametrize(("width", "scale"), [(320, 1), (640, 2)])
def test_the_delivers_tag_has_a_cell_of_its_own_on_a_narrow_screen(
    server: str, browser: WebDriver, width: int, scale: int
) -> None:
    """A phone and a laptop at 200 % zoom: the "delivers" tag, the one cell of a store row without a grid area, was
    put in the 1.4rem cell under the marker, and its text ran 19 px out of it over the price ("delive€2.49")."""
    driver = browser
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 640, "deviceScaleFactor": scale, "mobile": scale == 1},
    )
    try:
        open_page(driver, server, f"?q=faucet&mode=keyword&near={PRESET}&delivers=1")
        assert wait_results(driver, "faucet")
        found = driver.execute_script(
            """
            return [...document.querySelectorAll('#results li.store')].filter(r => r.querySelector('.delivers'))
              .map(row => { const tag = row.querySelector('.delivers'), text = document.createRange();
                text.selectNodeContents(tag);
                const t = text.getBoundingClientRect(), b = tag.getBoundingClientRect();
                const over = [...row.children].filter(c => c !== tag).filter(c => { const r = c.getBoundingClientRect();
                  return t.left < r.right && r.left < t.right && t.top < r.bottom && r.top < t.bottom; });
                return {box: [b.left, b.right], text: [t.left, t.right], over: over.map(c => c.className)}; });
            """
        )
        assert found, "no store row shows “delivers”"
        for tag in found:
            assert tag["over"] == [] and tag["text"][1] <= tag["box"][1] + 0.5, (width, tag)
        assert layout_problems(driver) == [], width
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def wait_new_answer(driver: WebDriver, before: int, query: str) -> list[WebElement]:
    wait_for(driver, "a new search request", lambda d: search_requests(d) > before)
    return wait_results(driver, query)


def test_facets_sort_suggestions_and_delivery(server: str, browser: WebDriver, artifacts: Path) -> None:
    """The search features on the page: suggestions under the box, a facet column whose counts filter, the sort
    selector and the "delivers to me" switch, each checked against the API's answer to the URL the page asked."""
    driver = browser
    open_page(driver, server, "?near=" + PRESET)
    type_query(driver, "cordless dr")
    wait_for(  # the list for the box's text, not an earlier keystroke's, redrawn under the clicks below
        driver,
        "suggestions under the search box",
        lambda d: (
            suggestions_ready(d)
            and any("cordless drill" in e.text.lower() for e in d.find_elements(By.CSS_SELECTOR, "#suggestions li"))
        ),
    )
    save_screenshot(driver, artifacts / "page-suggestions.png")
    for option in driver.find_elements(By.CSS_SELECTOR, "#suggestions button"):  # "Cordless drill 18 Vproduct"
        text, kind = (option.find_element(By.CSS_SELECTOR, f"span{c}").text for c in (":first-child", ".kind"))
        assert option.accessible_name == f"{text}, {kind}"
    press(driver, "the first suggestion", (By.CSS_SELECTOR, "#suggestions li button"))
    assert driver.find_element(By.ID, "suggestions").get_attribute("hidden") is not None
    assert driver.switch_to.active_element.get_attribute("id") == "q"  # the focus fell to <body> with the list
    type_query(driver, "cordless dr")
    wait_for(driver, "suggestions again", suggestions_ready)
    driver.find_element(By.ID, "q").send_keys(Keys.ARROW_DOWN)
    driver.switch_to.active_element.send_keys(Keys.ENTER)  # chosen from the keyboard: back in the box too
    assert _suggestions_hidden(driver) and driver.switch_to.active_element.get_attribute("id") == "q"
    type_query(driver, "cordless dr")
    wait_for(driver, "suggestions again", suggestions_ready)
    driver.find_element(By.ID, "q").send_keys(Keys.ENTER)  # searching: the list goes (it stayed open)
    wait_for(
        driver, "the list hidden", lambda d: d.find_element(By.ID, "suggestions").get_attribute("hidden") is not None
    )
    long_text = "cordless drill " + "x" * 100
    type_query(driver, long_text)  # past what /v1/suggest takes: no list, not an old one
    # its search answered: the last keystroke's list timer (120 ms, before the search's 250 ms) has fired, and no
    # list is still to come (a fixed 0.6 s could end before it fired, under load)
    wait_results(driver, long_text)
    wait_for(driver, "the last keystroke's list", suggestions_settled)
    assert driver.find_element(By.ID, "suggestions").get_attribute("hidden") is not None

    query = "something to fix a dripping tap"
    type_query(driver, query)
    wait_results(driver, query)
    body = api_answer(last_search_url(driver))
    brands = {f["value"]: f["count"] for f in body["facets"]["brand"]}
    shown = {
        b.find_element(By.CSS_SELECTOR, ".label").text: int(b.find_element(By.CSS_SELECTOR, ".count").text)
        for b in driver.find_elements(By.CSS_SELECTOR, "#facets .facet-group:nth-of-type(2) button")
    }
    assert shown == brands and "Forge" in brands
    prices = [b.find_element(By.CSS_SELECTOR, ".label").text
              for b in driver.find_elements(By.CSS_SELECTOR, "#facets .facet-group:nth-of-type(3) button")]  # fmt: skip
    # No currency: a bucket counts the whole set, any listing's currency; it took the page's hits' (`200–499.99 EUR`
    # held a 450 JPY bread in a set whose first page was EUR)
    assert prices and all(re.fullmatch(r"(from )?[\d.]+(–[\d.]+)?", p) for p in prices), prices

    before = search_requests(driver)
    forge = next(b for b in driver.find_elements(By.CSS_SELECTOR, "#facets button") if b.text.startswith("Forge"))
    forge.send_keys(Keys.ENTER)  # from the keyboard: the focus stays on the (redrawn) button, not the page's top
    items = wait_new_answer(driver, before, query)
    focused = driver.execute_script("return document.activeElement.dataset.facet || document.activeElement.tagName;")
    assert focused == "Forge", focused
    assert len(items) == brands["Forge"]
    assert {li.find_element(By.CSS_SELECTOR, ".brand").text for li in items} == {"Forge"}
    assert "brand=Forge" in last_search_url(driver)
    save_screenshot(driver, artifacts / "page-facets.png")
    # The address bar carries the chosen facet value (and sort, delivery): a shared link shows the same page.
    shared = driver.current_url
    assert "brand=Forge" in shared
    driver.get(shared)
    wait_for(
        driver, "the page to load", lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true"
    )
    assert len(wait_results(driver, query)) == brands["Forge"] and "brand=Forge" in last_search_url(driver)
    before = search_requests(driver)
    press(
        driver,
        "Forge",
        next(b for b in driver.find_elements(By.CSS_SELECTOR, "#facets button") if b.text.startswith("Forge")),
    )
    wait_new_answer(driver, before, query)

    before = search_requests(driver)
    Select(driver.find_element(By.ID, "sort")).select_by_value("price")
    wait_new_answer(driver, before, query)
    body = api_answer(last_search_url(driver))
    lowest = [min(s["price"] for s in hit["stores"]) for hit in body["results"]]
    assert lowest == sorted(lowest) and len(lowest) > 1
    shown_names = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#results li.result .name")]
    assert shown_names == [hit["product"]["name"] for hit in body["results"]]
    labels = {e.get_attribute("aria-label") for e in driver.find_elements(By.CSS_SELECTOR, "#results ul.stores")}
    assert labels == {"Cheapest stores"}, labels  # each hit's stores come cheapest first ("Nearest" said otherwise)

    before = search_requests(driver)
    press(driver, "Delivers to me", (By.ID, "delivers"))
    items = wait_new_answer(driver, before, query)
    assert "fulfilment=delivery" in last_search_url(driver)
    stores = [r.text for li in items for r in li.find_elements(By.CSS_SELECTOR, "li.store")]
    assert stores and all("Randberg Markt" in t and "delivers" in t for t in stores)
    assert f"from stores delivering to {PRESET}" in driver.find_element(By.ID, "status").text  # not "within 5 km"
    box = driver.find_element(By.ID, "q")  # the suggestion list as a screen reader meets it
    assert (box.get_attribute("role"), box.get_attribute("aria-controls")) == ("combobox", "suggestions")
    save_screenshot(driver, artifacts / "page-delivery.png")
    before = search_requests(driver)
    press(driver, "Delivers to me", (By.ID, "delivers"))
    wait_new_answer(driver, before, query)
    before = search_requests(driver)
    Select(driver.find_element(By.ID, "sort")).select_by_value("relevance")
    wait_new_answer(driver, before, query)

    # Without a place, the distance sort, "delivers to me" and the radius are disabled (they stayed set, unused).
    location = Select(driver.find_element(By.ID, "location"))
    location.select_by_value("")
    assert driver.find_element(By.ID, "delivers").get_attribute("disabled") is not None
    assert driver.find_element(By.CSS_SELECTOR, '#sort option[value="distance"]').get_attribute("disabled")
    before = search_requests(driver)
    location.select_by_visible_text(PRESET)
    wait_new_answer(driver, before, query)
    assert driver.find_element(By.ID, "delivers").get_attribute("disabled") is None

    # A store chosen in the facet column, then another radius: the store may be out of it, with no button to undo
    # the filter, so the page drops it (it kept sending store_id and showed nothing).
    before = search_requests(driver)
    store = next(g for g in driver.find_elements(By.CSS_SELECTOR, "#facets .facet-group") if g.text.startswith("Store"))
    press(driver, "the first store", store.find_element(By.CSS_SELECTOR, "button"))
    wait_new_answer(driver, before, query)
    assert "store_id=" in last_search_url(driver)
    before = search_requests(driver)
    driver.execute_script(
        "var r = document.getElementById('radius'); r.value = '2'; r.dispatchEvent(new Event('input'));"
    )
    wait_new_answer(driver, before, query)
    assert "store_id=" not in last_search_url(driver)


def _suggestions_hidden(driver: WebDriver) -> bool:
    return driver.find_element(By.ID, "suggestions").get_attribute("hidden") is not None


def test_laptop_width_paging_and_the_suggestion_list(server: str, browser: WebDriver, artifacts: Path) -> None:
    """At 981-1280 px the three panes left the results a few pixels (the radar over their cards, store names
    0 px wide), and from 1300 px on a 322 px list (cards under the radar, every store name cut); the page showed
    20 results of 1,000 and said "20 products"; the suggestion list covered the box being typed in and stayed open
    when the focus left it."""
    driver = browser
    try:
        for width, extra in ((1366, ""), (1366, "&delivers=1"), (1920, ""), (1100, "")):
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            )
            open_page(driver, server, "?near=" + PRESET + "&q=milk&mode=semantic" + extra)
            assert wait_results(driver, "milk")
            assert layout_problems(driver) == [], (width, extra)
            if width == 1920:
                save_screenshot(driver, artifacts / "page-1920.png")
            if width == 1366 and not extra:  # a 1366x768 laptop's window: the sticky controls ran past its foot
                driver.execute_cdp_cmd(
                    "Emulation.setDeviceMetricsOverride",
                    {"width": 1366, "height": 650, "deviceScaleFactor": 1, "mobile": False},
                )
                assert hidden_when_focused(driver, CONTROLS) == []
        covered = driver.execute_script(
            "var n = document.querySelector('#results li.result .name'); var r = n.getBoundingClientRect();"
            "return document.elementFromPoint(r.left + 5, r.top + r.height / 2) === n;"
        )
        assert covered is True, "something lies over the first result"
        widths = driver.execute_script(
            "return Array.from(document.querySelectorAll('.store-name')).map(e => e.getBoundingClientRect().width);"
        )
        assert widths and min(widths) > 60, widths
        save_screenshot(driver, artifacts / "page-1100.png")
        # pages of 4 here (the test catalogue holds 12 products): the page's own size is 20
        driver.execute_script(
            "const set = URLSearchParams.prototype.set; URLSearchParams.prototype.set = function (k, v) {"
            " return set.call(this, k, k === 'limit' && v === '20' ? '4' : v); };"
        )
        before = search_requests(driver)
        type_query(driver, "milk")
        items = wait_new_answer(driver, before, "milk")
        status = driver.find_element(By.ID, "status").text
        total = api_answer(last_search_url(driver))["total"]
        assert len(items) == 4 and total > 4 and f"4 of {total:,}" in status, status
        before = search_requests(driver)
        press(driver, "Show more", (By.CSS_SELECTOR, "#results .more-button"))
        wait_for(driver, "the next page", lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results li.result")) == 8)
        assert search_requests(driver) == before + 1 and "offset=4" in last_search_url(driver)
        # a next page answered after a new search was added to the new one's list. The page is held until the new
        # search has answered (`window.late` counts the pages handed to the page): a fixed 1.5 s let it in before
        # the keystrokes on a loaded machine, where it is rightly added and the check saw nothing of what it is for
        driver.execute_script(
            "window.late = 0; window.hold = true; const f = window.fetch; window.fetch = function (u, o) {"
            " const p = f(u, o); return String(u).includes('offset=') ? new Promise(r => setTimeout(function go() {"
            "  if (window.hold) setTimeout(go, 50); else { r(p); window.late++; } }, 50)) : p; };"
        )
        press(driver, "Show more", (By.CSS_SELECTOR, "#results .more-button"))
        before = search_requests(driver)
        type_query(driver, "drill")
        wait_new_answer(driver, before, "drill")
        driver.execute_script("window.hold = false;")
        wait_for(driver, "the old next page", lambda d: d.execute_script("return window.late;") == 1)
        assert len(driver.find_elements(By.CSS_SELECTOR, "#results li.result")) == 4  # the old page dropped

        type_query(driver, "cordless dr")
        wait_for(driver, "suggestions", suggestions_ready)
        box = driver.find_element(By.ID, "q").rect
        listed = driver.find_element(By.ID, "suggestions").rect
        assert listed["y"] >= box["y"] + box["height"] - 1, (box, listed)  # below the box, not over it
        press(driver, "the results' heading", (By.ID, "results-heading"))  # the focus leaves the field: the list goes
        wait_for(driver, "the list hidden", _suggestions_hidden)
        type_query(driver, "cordless dr")
        wait_for(driver, "suggestions", suggestions_ready)
        driver.find_element(By.ID, "q").send_keys(Keys.ESCAPE)  # closes the list only: it cleared the search box
        assert _suggestions_hidden(driver) and driver.find_element(By.ID, "q").get_attribute("value") == "cordless dr"
        type_query(driver, "cordless d")  # the focus leaves before the list comes: it must not open then
        driver.find_element(By.ID, "results-heading").click()  # at once: press() would wait for the list
        # no list still to come (a fixed 1 s could end, under load, before a list that wrongly came); the search's
        # answer comes after the keystroke's list timer (120 ms against 250 ms)
        wait_results(driver, "cordless d")
        wait_for(driver, "no list still to come", suggestions_settled)
        assert _suggestions_hidden(driver), "the list opened after the focus had left the box"
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_a_shared_link_keeps_my_location_and_names_an_unknown_place(server: str, browser: WebDriver) -> None:
    """After "Use my location" the link had no place, and a reload searched the first neighbourhood; an unknown
    `near=` fell back to it without a word."""
    driver = browser
    driver.execute_cdp_cmd("Browser.grantPermissions", {"permissions": ["geolocation"]})
    driver.execute_cdp_cmd(
        "Emulation.setGeolocationOverride", {"latitude": 52.4986, "longitude": 13.4030, "accuracy": 10}
    )
    try:
        open_page(driver, server, "?q=milk")
        before = search_requests(driver)
        press(driver, "Use my location", (By.ID, "locate"))
        wait_new_answer(driver, before, "milk")
        assert "at=52.49860%2C13.40300" in driver.current_url, driver.current_url
        driver.get(driver.current_url)
        wait_for(
            driver, "the page", lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true"
        )
        wait_results(driver, "milk")
        assert "lat=52.4986" in last_search_url(driver) and "lon=13.403" in last_search_url(driver)
        open_page(driver, server, "?near=Nowhere&q=milk")
        wait_results(driver, "milk")
        assert "“Nowhere” is not one of the places here" in driver.find_element(By.ID, "status").text
    finally:
        driver.execute_cdp_cmd("Emulation.clearGeolocationOverride", {})


def test_a_linked_position_is_named_the_shared_location_not_yours(
    server: str, browser: WebDriver, origin: tuple[float, float]
) -> None:
    """A link's `at=` is its sender's position, but the page named it "My location" and said "within 5 km of your
    location" and "drawn around your location" to whoever opened it, who had shared no position."""
    driver = browser
    at = f"{origin[0]:.5f},{origin[1]:.5f}"
    open_page(driver, server, f"?q=faucet&mode=keyword&at={at}")
    assert wait_results(driver, "faucet")
    place = Select(driver.find_element(By.ID, "location")).first_selected_option
    assert place.get_attribute("value") == "me" and place.text == "Shared location (from the link)", place.text
    status = driver.find_element(By.ID, "status").text
    assert "within 5 km of the shared location" in status and "your location" not in status, status
    assert "the position the link shares, not yours" in status, status
    caption = wait_for(
        driver, "the radar caption", lambda d: "drawn" in (text := d.find_element(By.ID, "radar-caption").text) and text
    )
    assert "drawn around the shared location." in caption, caption
    type_query(driver, "xylophone")
    wait_for(driver, "the empty state", lambda d: settled(d) and d.find_elements(By.CSS_SELECTOR, "#results .empty"))
    assert "your location" not in driver.find_element(By.ID, "status").text


def test_my_own_location_is_still_mine_after_a_reload(server: str, browser: WebDriver) -> None:
    """After "Use my location" the address holds `at=`, and a reload (or Back from another site) read it as a link's
    position: "Shared location (from the link)", "the position the link shares, not yours", "within 5 km of the
    shared location", of the shopper's own position. The tab now remembers the position it located; another `at=`
    is still a link's."""
    driver = browser
    driver.execute_cdp_cmd("Browser.grantPermissions", {"permissions": ["geolocation"]})
    driver.execute_cdp_cmd("Emulation.setGeolocationOverride", {"latitude": 52.5001, "longitude": 13.41, "accuracy": 9})
    try:
        open_page(driver, server, "?q=milk&near=" + PRESET)
        assert wait_results(driver, "milk")
        before = search_requests(driver)
        press(driver, "Use my location", (By.ID, "locate"))
        wait_new_answer(driver, before, "milk")
        assert "at=52.50010%2C13.41000" in driver.current_url, driver.current_url
        driver.refresh()
        wait_for(
            driver, "the page", lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true"
        )
        wait_results(driver, "milk")
        place = Select(driver.find_element(By.ID, "location")).first_selected_option
        status = driver.find_element(By.ID, "status").text
        assert place.text == "My location", place.text
        assert "within 5 km of your location" in status and "shares" not in status, status
        open_page(driver, server, "?q=milk&at=52.51000,13.39000")  # someone else's position
        wait_results(driver, "milk")
        assert Select(driver.find_element(By.ID, "location")).first_selected_option.text.startswith("Shared location")
    finally:
        driver.execute_cdp_cmd("Emulation.clearGeolocationOverride", {})
        driver.execute_script("sessionStorage.clear();")


MARKERS = {
    "marker": (".marker", "color", ".marker", "backgroundColor"),
    "radar dot": ("#radar .store-dot text", "fill", "#radar .store-dot circle", "fill"),
}
SUGGESTION = {
    "kind": ("#suggestions .kind", "color", "", ""),
}
FOCUSED_SUGGESTION = {
    "focused suggestion": (
        "#suggestions [aria-selected=true]",
        "color",
        "#suggestions [aria-selected=true]",
        "backgroundColor",
    ),
    "its kind": (
        "#suggestions [aria-selected=true] .kind",
        "color",
        "#suggestions [aria-selected=true]",
        "backgroundColor",
    ),
}
RING = {  # the ring of the focused box against each background it can show on
    f"ring on {bg}": ("#q", "outlineColor", bg, "backgroundColor") for bg in ("body", "#search-form", "li.selected")
}
BORDERS = {  # inside the box and outside it
    f"{box} border {where}": (
        box,
        "borderTopColor",
        box if where == "in" else "",
        "backgroundColor" if where == "in" else "parent",
    )
    for box in ("#q", "#location", "#sort", ".more-button")
    for where in ("in", "out")
}


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_contrast_in_both_schemes(server: str, browser: WebDriver, scheme: str) -> None:
    """Text 4.5:1, focus ring and control borders 3:1 (WCAG 1.4.3, 1.4.11). Dark: white on the orange store
    markers and radar dots was 2.26:1, on a focused suggestion 2.42:1, its kind (0.65 opacity) 1.81:1, input borders
    1.63:1; light: that kind 3.63:1, the amber ring 1.6-1.83:1, input borders 1.58:1."""
    driver = browser
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
    )
    try:
        open_page(driver, server, "?near=" + PRESET + "&q=tap+washer")
        wait_results(driver, "tap washer")
        wait_for(driver, "the radar's dots", lambda d: d.find_elements(By.CSS_SELECTOR, "#radar .store-dot"))
        driver.execute_script(  # what the "Show more" button looks like, whatever the page's total
            "const li = document.createElement('li'); li.className = 'more';"
            "li.innerHTML = '<button type=button class=more-button>Show more</button>';"
            "document.getElementById('results').appendChild(li); document.getElementById('q').focus();"
        )
        measured = contrasts(driver, {**MARKERS, **RING, **BORDERS})
        type_query(driver, "cordless dr")
        wait_for(driver, "suggestions", suggestions_ready)
        measured |= contrasts(driver, SUGGESTION)
        driver.find_element(By.ID, "q").send_keys(Keys.ARROW_DOWN)
        measured |= contrasts(driver, FOCUSED_SUGGESTION)
        low = {k: v for k, v in measured.items() if v < (3 if k.startswith(("ring", "#", ".")) else 4.5)}
        assert low == {}, (scheme, measured)
    finally:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def test_a_capped_total_is_shown_as_a_lower_bound(server: str, browser: WebDriver) -> None:
    """A set cut at PLINQY_FACET_DEPTH (1000) was shown as "20 of 1,000" where more matched: the API's
    `total_capped` makes it "20 of 1,000+". The answer is rewritten in the page (this catalogue holds 12 products)."""
    driver = browser
    open_page(driver, server, "?near=" + PRESET + "&q=milk&mode=semantic")
    assert wait_results(driver, "milk")
    driver.execute_script(
        "const f = window.fetch; window.fetch = async function (u, o) { const r = await f(u, o);"
        " if (!String(u).includes('/v1/search?')) return r; const b = await r.json();"
        " b.total = 1000; b.total_capped = true;"
        " return new Response(JSON.stringify(b), {status: r.status, headers: r.headers}); };"
    )
    before = search_requests(driver)
    type_query(driver, "drill")
    items = wait_new_answer(driver, before, "drill")
    status = driver.find_element(By.ID, "status").text
    assert f"{len(items)} of 1,000+ products" in status, status


# Ten brands and eight stores more than this catalogue has, listed first in every search's facets (the page draws
# 10 brands and 8 stores): the real values come past them.
MANY_FACET_VALUES = (
    "const f = window.fetch; window.fetch = async function (u, o) { const r = await f(u, o);"
    " if (!String(u).includes('/v1/search?') || !r.ok) return r; const b = await r.json();"
    " if (b.facets) { const n = [...Array(10).keys()];"
    "  b.facets.brand = n.map(i => ({value: 'Filler ' + i, count: 50})).concat(b.facets.brand || []);"
    "  b.facets.store = n.slice(0, 8).map(i => ({id: '00000000-0000-4000-8000-00000000000' + i,"
    "   name: 'Filler store ' + i, count: 50})).concat(b.facets.store || []); }"
    " return new Response(JSON.stringify(b), {status: r.status, headers: r.headers}); };"
)


def _facet_button(driver: WebDriver, group: str, label: str) -> WebElement | None:
    for box in driver.find_elements(By.CSS_SELECTOR, "#facets .facet-group"):
        if box.find_element(By.TAG_NAME, "h3").text == group:
            for b in box.find_elements(By.CSS_SELECTOR, "button"):
                if b.get_attribute("data-facet") == label:
                    return b
    return None


def test_a_chosen_brand_or_store_past_the_drawn_ones_keeps_its_button(server: str, browser: WebDriver) -> None:
    """The page draws 10 brands and 8 stores; one chosen past them (a shared link, or the counts changed after it
    was pressed) filtered the results with no pressed button to show it or clear it."""
    driver = browser
    query = "something to fix a dripping tap"
    link = "?near=" + PRESET + "&q=" + query.replace(" ", "+")
    script = driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": MANY_FACET_VALUES})
    try:
        open_page(driver, server, link + "&brand=forge")  # as typed in a link: the API folds the case
        assert {li.find_element(By.CSS_SELECTOR, ".brand").text for li in wait_results(driver, query)} == {"Forge"}
        forge = _facet_button(driver, "Brand", "Forge")
        assert forge is not None and forge.get_attribute("aria-pressed") == "true"
        before = search_requests(driver)
        press(driver, "Forge", forge)  # pressed again: cleared
        wait_new_answer(driver, before, query)
        assert "brand=" not in last_search_url(driver) and "brand=" not in driver.current_url
        assert _facet_button(driver, "Brand", "Forge") is None  # not chosen: past the 10 again

        store = next(s for s in api_answer(last_search_url(driver))["facets"]["store"] if not s["name"].startswith("F"))
        open_page(driver, server, link + "&store_id=" + store["id"])
        wait_results(driver, query)
        button = _facet_button(driver, "Store", store["name"])
        assert button is not None and button.get_attribute("aria-pressed") == "true"
        before = search_requests(driver)
        press(driver, "the chosen store", button)
        wait_new_answer(driver, before, query)
        assert "store_id=" not in last_search_url(driver)
    finally:
        driver.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]})


def test_a_capped_total_keeps_its_plus_when_every_row_is_shown(server: str, browser: WebDriver) -> None:
    """`total_capped` was said only when the total exceeded the rows shown: a capped total of 18 with 18 rows read
    "18 products", and 1,000 rows (Show more to the cap) "1000 products", without the "+" or the separator."""
    driver = browser
    open_page(driver, server, "?near=" + PRESET + "&q=milk&mode=semantic")
    assert wait_results(driver, "milk")
    driver.execute_script(  # the answer rewritten: `rows` copies of its first hit, all of a capped total
        "window.rows = 0; const f = window.fetch; window.fetch = async function (u, o) { const r = await f(u, o);"
        " if (!String(u).includes('/v1/search?')) return r; const b = await r.json();"
        " b.results = Array(window.rows).fill(b.results[0]); b.total = window.rows; b.total_capped = true;"
        " return new Response(JSON.stringify(b), {status: r.status, headers: r.headers}); };"
    )
    for rows, said in ((18, "18+ products"), (1000, "1,000+ products")):
        driver.execute_script("window.rows = arguments[0];", rows)
        before = search_requests(driver)
        type_query(driver, f"drill {rows}")
        items = wait_new_answer(driver, before, f"drill {rows}")
        status = driver.find_element(By.ID, "status").text
        assert len(items) == rows and status.startswith(said + " for"), status


def test_show_more_shows_a_product_that_came_again_once(server: str, browser: WebDriver) -> None:
    """Under sort=price a price changing between two pages moves a product: the next page repeats it (and one is
    skipped; the README tells clients to de-duplicate by product id). The page showed it twice and asked for the
    page after by rows shown, not read. The answers are rewritten in the page: rows 1-2, then 2-3, then 4."""
    driver = browser
    open_page(driver, server, "?near=" + PRESET + "&q=milk&mode=semantic")
    assert wait_results(driver, "milk")
    driver.execute_script(
        "const f = window.fetch; window.fetch = async function (u, o) { const r = await f(u, o);"
        " if (!String(u).includes('/v1/search?')) return r; const b = await r.json();"
        " const off = Number(new URL(u, location.href).searchParams.get('offset') || 0);"
        " const hit = i => Object.assign({}, b.results[0], {product: Object.assign({}, b.results[0].product,"
        "  {id: '00000000-0000-4000-8000-00000000000' + i, name: 'Row ' + i})});"
        " b.results = ({0: [1, 2], 2: [2, 3], 4: [4]}[off] || []).map(hit); b.total = 4; b.total_capped = false;"
        " return new Response(JSON.stringify(b), {status: r.status, headers: r.headers}); };"
    )
    before = search_requests(driver)
    type_query(driver, "drill")
    assert len(wait_new_answer(driver, before, "drill")) == 2

    def names(d: WebDriver) -> list[str]:  # read in one script: the list is redrawn under a find's elements
        return list(d.execute_script("return [...document.querySelectorAll('#results li.result h3.name')]"
                                     ".map(e => e.textContent)"))  # fmt: skip

    press(driver, "Show more", (By.CSS_SELECTOR, "#results .more-button"))
    wait_for(driver, "the next page", lambda d: len(names(d)) == 3)
    assert names(driver) == ["Row 1", "Row 2", "Row 3"] and "offset=2" in last_search_url(driver)
    press(driver, "Show more", (By.CSS_SELECTOR, "#results .more-button"))
    wait_for(driver, "the page after", lambda d: len(names(d)) == 4)
    assert "offset=4" in last_search_url(driver)  # the rows read (4), not shown (3): row 4 was not skipped
    assert names(driver) == ["Row 1", "Row 2", "Row 3", "Row 4"]
    assert not driver.find_elements(By.CSS_SELECTOR, "#results .more-button")


def test_show_more_stops_where_the_api_stops_paging(server: str, browser: WebDriver) -> None:
    """A keyword set is counted whole (up to 2,000) but paged only to offset 1,000: past 1,020 rows "Show more"
    asked for offset 1,020 and showed the API's 400 on every press. The answer is rewritten in the page."""
    driver = browser
    open_page(driver, server, "?near=" + PRESET + "&q=milk&mode=semantic")
    assert wait_results(driver, "milk")
    driver.execute_script(  # `rows` copies of the first hit, of a total of 1,534 (not capped)
        "window.rows = 0; const f = window.fetch; window.fetch = async function (u, o) { const r = await f(u, o);"
        " if (!String(u).includes('/v1/search?')) return r; const b = await r.json();"
        " b.results = Array(window.rows).fill(b.results[0]); b.total = 1534; b.total_capped = false;"
        " return new Response(JSON.stringify(b), {status: r.status, headers: r.headers}); };"
    )
    for rows, more in ((1000, True), (1020, False)):
        driver.execute_script("window.rows = arguments[0];", rows)
        before = search_requests(driver)
        type_query(driver, f"drill {rows}")
        assert len(wait_new_answer(driver, before, f"drill {rows}")) == rows
        assert bool(driver.find_elements(By.CSS_SELECTOR, "#results .more-button")) is more, rows
        end = driver.find_elements(By.CSS_SELECTOR, "#results .paged-to-the-end")
        assert (not end) if more else ("The first 1,020 are shown" in end[0].text), rows
    script = (Path(__file__).parents[1] / "search_service/api/static/app.js").read_text()
    assert f"var MAX_OFFSET = {MAX_OFFSET};" in script  # the page's bound is the API's


def test_a_suggestion_picked_right_after_a_keystroke_closes_the_list(server: str, browser: WebDriver) -> None:
    """A suggestion clicked within the keystroke's 120 ms (and its request's round trip) closed the list, then the
    keystroke's list came and opened it again over the results: the click left its timer and request running."""
    driver = browser
    open_page(driver, server, "?near=" + PRESET)
    type_query(driver, "cordless dr")
    wait_for(driver, "suggestions", suggestions_ready)
    picked = driver.execute_script(  # one more letter and, at once, a click on a suggestion of the old list
        "const q = document.getElementById('q'); q.value = 'cordless dri';"
        "q.dispatchEvent(new Event('input', {bubbles: true}));"
        "const b = document.querySelector('#suggestions button'); b.focus(); b.click(); return q.value;"
    )
    wait_results(driver, picked)
    time.sleep(1.0)  # the keystroke's timer and answer would have come by now
    assert _suggestions_hidden(driver), "the list opened again after a suggestion was picked"
    assert driver.find_element(By.ID, "q").get_attribute("aria-expanded") == "false"


def test_the_suggestion_list_is_a_combobox_the_focus_stays_in_the_box(server: str, browser: WebDriver) -> None:
    """↓ moved the focus onto the first option, a button: the space of " milk" clicked it, the box took "Oatfield"
    (or here "Oat drink…") and its brand, and "milk" was glued on. Now ↓/↑ point at an option from the box
    (aria-activedescendant, aria-selected), typing goes on into the box, and Enter alone picks the option."""
    driver = browser
    open_page(driver, server, "?near=" + PRESET)
    box = driver.find_element(By.ID, "q")
    type_query(driver, "oat")
    wait_for(driver, "suggestions", suggestions_ready)
    box.send_keys(Keys.ARROW_DOWN)
    first = driver.find_element(By.CSS_SELECTOR, "#suggestions [role=option]")
    assert driver.switch_to.active_element.get_attribute("id") == "q"
    assert box.get_attribute("aria-activedescendant") == first.get_attribute("id")
    selected = [o.get_attribute("aria-selected") for o in driver.find_elements(By.CSS_SELECTOR, "[role=option]")]
    assert selected[0] == "true" and set(selected[1:]) <= {"false"}, selected
    webdriver.ActionChains(driver).send_keys(" milk").perform()
    assert box.get_attribute("value") == "oat milk"
    wait_results(driver, "oat milk")
    assert "brand=" not in last_search_url(driver) and driver.switch_to.active_element.get_attribute("id") == "q"

    type_query(driver, "cordless dr")
    wait_for(driver, "suggestions", suggestions_ready)
    text = driver.find_element(By.CSS_SELECTOR, "#suggestions [role=option] span:first-child").text
    before = search_requests(driver)
    box.send_keys(Keys.ARROW_DOWN, Keys.ENTER)
    wait_new_answer(driver, before, text)
    assert box.get_attribute("value") == text and box.get_attribute("aria-activedescendant") is None


def test_typing_after_show_more_drops_the_page_and_keeps_the_focus(server: str, browser: WebDriver) -> None:
    """Show more, then typing: the page answered while the new search was pending was added to the old results
    (labelled with the new words), and the focus moved to its first row, so the next keystrokes were lost."""
    driver = browser
    open_page(driver, server, "?near=" + PRESET + "&q=milk&mode=semantic")
    assert wait_results(driver, "milk")
    # Pages of 4; a next page answers in 0.5 s, a new search in 2 s, each once `window.held` lets it (the test
    # holds them until what must come first has: timed alone, a loaded machine let the page in before the click on
    # the box or the keystrokes, 11 rows, or the search's answer in before the checks); `window.pages` counts the
    # next pages handed to the page.
    driver.execute_script(
        "const set = URLSearchParams.prototype.set; URLSearchParams.prototype.set = function (k, v) {"
        " return set.call(this, k, k === 'limit' && v === '20' ? '4' : v); };"
        "window.held = {page: false, search: false}; window.pages = 0; const f = window.fetch;"
        "const after = (p, ms, kind) => new Promise(r => setTimeout(function go() {"
        " if (window.held[kind]) setTimeout(go, 50); else { r(p); if (kind === 'page') window.pages++; } }, ms));"
        "window.fetch = function (u, o) { const p = f(u, o); if (!String(u).includes('/v1/search?')) return p;"
        " return String(u).includes('offset=') ? after(p, 500, 'page') : after(p, 2000, 'search'); };"
    )
    before = search_requests(driver)
    type_query(driver, "milk")
    assert len(wait_new_answer(driver, before, "milk")) == 4
    driver.execute_script("window.held.page = true;")
    press(driver, "Show more", (By.CSS_SELECTOR, "#results .more-button"))
    driver.find_element(By.ID, "q").click()  # on to the box, not typing yet: the page comes, the focus stays
    driver.execute_script("window.held.page = false;")
    wait_for(driver, "the next page", lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results li.result")) == 8)
    assert driver.switch_to.active_element.get_attribute("id") == "q"
    driver.execute_script("window.held.page = true; window.held.search = true;")
    press(driver, "Show more", (By.CSS_SELECTOR, "#results .more-button"))
    driver.find_element(By.ID, "q").send_keys(Keys.END, " o")
    wait_for(driver, "the typed search to be pending", lambda d: not settled(d))  # its keystroke marks it busy
    driver.execute_script("window.held.page = false;")
    wait_for(driver, "the next page asked before typing", lambda d: d.execute_script("return window.pages;") == 2)
    assert driver.switch_to.active_element.get_attribute("id") == "q"
    assert len(driver.find_elements(By.CSS_SELECTOR, "#results li.result")) == 8  # the old page was dropped
    driver.execute_script("window.held.search = false;")
    webdriver.ActionChains(driver).send_keys("at").perform()  # typing on: every key reaches the box
    assert driver.find_element(By.ID, "q").get_attribute("value") == "milk oat"
    wait_results(driver, "milk oat")
    assert "offset=" not in last_search_url(driver)


def test_typing_after_a_facet_press_keeps_the_focus_in_the_box(server: str, browser: WebDriver) -> None:
    """A facet pressed, then the box typed in before its answer came: the typed search's answer moved the focus to
    that facet's button (the press's "focus it again" outlived the answer it was for), so the next keys were lost.
    A press left alone still gets its focus back once the buttons are drawn again."""
    driver = browser
    open_page(driver, server, "?near=" + PRESET + "&q=milk&mode=semantic")
    assert wait_results(driver, "milk")
    label = driver.find_element(By.CSS_SELECTOR, "#facets .facet-group:nth-of-type(2) button").get_attribute(
        "data-facet"
    )
    before = search_requests(driver)
    driver.execute_script(  # the press, then back to the box and typing, before the press's answer
        "const b = [...document.querySelectorAll('#facets button')].find(x => x.dataset.facet === arguments[0]);"
        "const q = document.getElementById('q'); b.click(); q.focus(); q.value = 'milk oat';"
        "q.dispatchEvent(new Event('input', {bubbles: true}));",
        label,
    )
    wait_new_answer(driver, before, "milk oat")
    assert driver.switch_to.active_element.get_attribute("id") == "q"
    webdriver.ActionChains(driver).send_keys("s").perform()
    assert driver.find_element(By.ID, "q").get_attribute("value") == "milk oats"
    wait_results(driver, "milk oats")  # its facets drawn, not redrawn under the next press

    button = _facet_button(driver, "Brand", label)
    assert button is not None
    before = search_requests(driver)
    button.send_keys(Keys.ENTER)  # a press alone: the redraw drops the focus, which goes back to the button
    wait_for(driver, "the pressed facet's answer", lambda d: search_requests(d) > before and settled(d))
    wait_for(driver, "the focus back on the facet", lambda d: d.switch_to.active_element.get_attribute("data-facet"))
    assert driver.switch_to.active_element.get_attribute("data-facet") == label


@pytest.mark.parametrize(
    ("link", "said"),
    [
        ("&min_price=abc", "min_price “abc”"),
        ("&store_id=nope", "store_id “nope”"),
        ("&min_price=10&max_price=5", "min_price 10 above max_price 5"),
    ],
)
def test_a_link_with_a_bad_facet_value_searches_without_it(
    server: str, browser: WebDriver, link: str, said: str
) -> None:
    """A shared link's bad price or store id was sent as it was: an error, no results, no control marked, the
    address rewritten to min_price=NaN, and every later change failed on it again. It is left out, with a note."""
    driver = browser
    open_page(driver, server, "?near=" + PRESET + "&q=milk" + link)
    assert wait_results(driver, "milk")
    assert not driver.find_element(By.ID, "error").is_displayed()
    status = driver.find_element(By.ID, "status").text
    assert f"The link's {said} ignored" in status, status
    asked = parse_qs(urlsplit(last_search_url(driver)).query)
    assert not {"min_price", "max_price", "store_id"} & set(asked), asked
    assert "price=" not in driver.current_url and "store_id=" not in driver.current_url, driver.current_url


# An API stricter than the page: the brand of each search is sent with a control character added, which it refuses.
_BRAND_MADE_REFUSED = """
(function () {
  var original = window.fetch;
  window.fetch = function (url, options) {
    if (typeof url === "string" && url.indexOf("/v1/search?") === 0) url = url.replace(/([?&]brand=[^&]*)/, "$1%01");
    return original.call(this, url, options);
  };
})();
"""


def test_a_facet_value_the_api_refuses_is_left_out_and_the_search_run_again(server: str, browser: WebDriver) -> None:
    """A facet value the page lets through but the API refuses has no control to correct it: it was dropped with the
    error alone on screen, no results for the valid query until something else changed. It is left out, said in the
    status, and the search is run again without it."""
    driver = browser
    added = driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _BRAND_MADE_REFUSED})
    try:
        open_page(driver, server, "?near=" + PRESET + "&q=milk&brand=Forge")
        assert wait_results(driver, "milk")
    finally:
        driver.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": added["identifier"]})
    status = driver.find_element(By.ID, "status").text
    assert "The brand “Forge” must not contain control characters: left out." in status, status
    assert not driver.find_element(By.ID, "error").is_displayed()
    assert "brand=" not in last_search_url(driver) and "brand=" not in driver.current_url
    before = search_requests(driver)
    Select(driver.find_element(By.ID, "mode")).select_by_value("semantic")
    assert wait_new_answer(driver, before, "milk")
    assert not driver.find_element(By.ID, "error").is_displayed() and "brand=" not in last_search_url(driver)


@pytest.mark.parametrize("brand", ["%E2%80%8F", "%E3%85%A4", "%C2%AD", "%E2%80%8B%20%E2%80%8F"])
def test_a_link_brand_of_nothing_visible_is_left_out_with_a_note(server: str, browser: WebDriver, brand: str) -> None:
    """A right-to-left mark, a Hangul filler, a soft hyphen: empty to the API (it trims what renders as nothing), which
    refused the search, while the page checked the brand with trim() only. Left out with the link's note now."""
    driver = browser
    open_page(driver, server, "?near=" + PRESET + "&q=milk&brand=" + brand)
    assert wait_results(driver, "milk")
    assert not driver.find_element(By.ID, "error").is_displayed()
    status = driver.find_element(By.ID, "status").text
    assert "The link's brand “" in status and "” ignored (not a valid value)" in status, status
    assert "brand=" not in last_search_url(driver) and "brand=" not in driver.current_url


def test_a_link_brand_is_as_long_as_its_characters_not_its_utf16_units(server: str, browser: WebDriver) -> None:
    """120 emoji are 120 characters to the API (at most 200), 240 UTF-16 units to `.length`: the page ignored the
    brand as too long. 201 characters are still too many."""
    driver = browser
    open_page(driver, server, "?near=" + PRESET + "&q=milk&brand=" + quote("😀" * 120))
    wait_results(driver, "milk")
    assert "ignored" not in driver.find_element(By.ID, "status").text
    assert parse_qs(urlsplit(last_search_url(driver)).query)["brand"] == ["😀" * 120]
    decomposed = "e\u0301" * 150  # macOS's é: 300 code points, 150 composed, as the API counts a brand
    open_page(driver, server, "?near=" + PRESET + "&q=milk&brand=" + quote(decomposed))
    wait_results(driver, "milk")
    assert "ignored" not in driver.find_element(By.ID, "status").text
    assert parse_qs(urlsplit(last_search_url(driver)).query)["brand"] == [decomposed]
    open_page(driver, server, "?near=" + PRESET + "&q=milk&brand=" + quote("é" * 201))
    wait_results(driver, "milk")
    assert "The link's brand “" in driver.find_element(By.ID, "status").text
    assert "brand=" not in last_search_url(driver)


def test_the_page_trims_what_the_api_trims() -> None:
    """app.js's copy of engine/text.py's INVISIBLE_CHARS (what renders as nothing), which its brand check trims."""
    script = (Path(__file__).resolve().parent.parent / "search_service/api/static/app.js").read_text(encoding="utf-8")
    found = re.search(r'var INVISIBLE_CHARS = "([^"]*)" \+\s*"([^"]*)";', script)
    assert found is not None and found.group(1) + found.group(2) == INVISIBLE_CHARS


def _pick_suggestion(driver: WebDriver, typed: str, kind: str, text: str) -> None:
    def option(d: WebDriver) -> WebElement | bool:
        for b in d.find_elements(By.CSS_SELECTOR, "#suggestions button"):
            if b.accessible_name == f"{text}, {kind}":
                return b
        return False

    type_query(driver, typed)
    before = search_requests(driver)
    # the list for the box's text: one of an earlier keystroke is redrawn under the click
    wait_for(driver, f"the {kind} suggestion {text!r}", lambda d: suggestions_ready(d) and option(d))
    press(
        driver,
        f"the {kind} suggestion {text!r}",
        (By.CSS_SELECTOR, f"#suggestions button[aria-label={json.dumps(f'{text}, {kind}', ensure_ascii=False)}]"),
    )
    wait_new_answer(driver, before, text)


def test_a_category_or_brand_suggestion_applies_its_filter(server: str, browser: WebDriver) -> None:
    """A category or brand suggestion only put its name in the box and ran a text search; it now sets the category
    picker or the brand facet too (the box keeps the name, which ranks the results)."""
    driver = browser
    open_page(driver, server, "?near=" + PRESET)
    _pick_suggestion(driver, "plumb", "category", "Plumbing")
    category = Select(driver.find_element(By.ID, "category")).first_selected_option
    assert category.text.endswith("Plumbing")
    assert parse_qs(urlsplit(last_search_url(driver)).query)["category_id"] == [category.get_attribute("value")]

    Select(driver.find_element(By.ID, "category")).select_by_value("")
    _pick_suggestion(driver, "volt", "brand", "Voltix")
    items = driver.find_elements(By.CSS_SELECTOR, "#results li.result")
    assert items and {li.find_element(By.CSS_SELECTOR, ".brand").text for li in items} == {"Voltix"}
    assert "brand=Voltix" in last_search_url(driver)
    voltix = _facet_button(driver, "Brand", "Voltix")
    assert voltix is not None and voltix.get_attribute("aria-pressed") == "true"


def test_a_category_suggestion_picked_in_keyword_mode_shows_the_category_s_products(
    server: str, browser: WebDriver
) -> None:
    """A category suggestion searched its name within the category, and in keyword mode, which matches the words of
    names and brands, no product is called "Plumbing": nothing found. The pick now shows the category's products in
    every mode: keyword mode goes to hybrid (the category's name ranks by meaning), and the status says so."""
    driver = browser
    open_page(driver, server, "?near=" + PRESET + "&mode=keyword")
    _pick_suggestion(driver, "plumb", "category", "Plumbing")
    names = {
        li.find_element(By.CSS_SELECTOR, ".name").text
        for li in driver.find_elements(By.CSS_SELECTOR, "#results li.result")
    }
    plumbing = {p.name for p in CATALOGUE if p.category == "Plumbing"}
    assert names == plumbing, names
    query = parse_qs(urlsplit(last_search_url(driver)).query)
    assert query["mode"] == ["hybrid"] and query["q"] == ["Plumbing"], query
    assert Select(driver.find_element(By.ID, "mode")).first_selected_option.get_attribute("value") == "hybrid"
    assert "mode=hybrid" in driver.current_url, driver.current_url
    status = driver.find_element(By.ID, "status").text
    assert "Exact words (keyword) match product names, not categories: Hybrid shows Plumbing's products." in status
    # in hybrid or semantic mode the pick keeps the mode
    Select(driver.find_element(By.ID, "category")).select_by_value("")
    Select(driver.find_element(By.ID, "mode")).select_by_value("semantic")
    _pick_suggestion(driver, "plumb", "category", "Plumbing")
    assert parse_qs(urlsplit(last_search_url(driver)).query)["mode"] == ["semantic"]
    assert "not categories" not in driver.find_element(By.ID, "status").text


@pytest.mark.parametrize(("radius", "rings"), [("0.5", ["0.5 km", "0.25 km"]), ("1.5", ["1.5 km", "0.75 km"])])
def test_the_radar_rings_say_their_radius_exactly(
    server: str, browser: WebDriver, radius: str, rings: list[str]
) -> None:
    """The inner ring, half the radius, was rounded to one decimal: "0.3 km" for 0.25 km, "0.8 km" for 0.75 km."""
    driver = browser
    open_page(driver, server, f"?near={PRESET}&radius={radius}")
    labels = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#radar .ring-label")]
    assert labels == rings, labels
    assert driver.find_element(By.ID, "radius-out").text == rings[0]


def test_delivers_to_me_says_what_it_searched_and_turns_the_radius_off(server: str, browser: WebDriver) -> None:
    """ "Delivers to me" keeps the stores delivering to the place, however far away (Randberg Markt, 8 km), but the
    status said "within 0.5 km of Kreuzberg, or delivering there", the radius slider stayed on and changed nothing,
    the empty state suggested a wider radius and the radar counted the 8 km store "around Kreuzberg" undrawn."""
    driver = browser
    open_page(driver, server, f"?q=faucet&mode=keyword&near={PRESET}&delivers=1&radius=0.5")
    items = wait_results(driver, "faucet")
    assert "fulfilment=delivery" in last_search_url(driver)
    assert [r.text.split("\n")[1] for r in items[0].find_elements(By.CSS_SELECTOR, "li.store")] == ["Randberg Markt"]
    status = driver.find_element(By.ID, "status").text
    assert f"for “faucet” from stores delivering to {PRESET}." in status and "within" not in status, status
    radius = driver.find_element(By.ID, "radius")
    assert radius.get_attribute("disabled") is not None and "Delivers to me" in (radius.get_attribute("title") or "")
    caption = wait_for(
        driver,
        "the radar caption",
        lambda d: "drawn" in (text := d.find_element(By.ID, "radar-caption").text) and text,
    )
    assert f"0 of 1 store drawn around {PRESET}. 1 delivering store is beyond the 0.5 km circle" in caption, caption

    type_query(driver, "xylophone")
    wait_for(driver, "the empty state", lambda d: settled(d) and d.find_elements(By.CSS_SELECTOR, "#results .empty"))
    hint = driver.find_element(By.CSS_SELECTOR, "#results .empty .hint").text
    assert "wider radius" not in hint and "turn off “Delivers to me”" in hint, hint

    before = search_requests(driver)
    press(driver, "Delivers to me", (By.ID, "delivers"))
    wait_new_answer(driver, before, "xylophone")
    assert driver.find_element(By.ID, "radius").get_attribute("disabled") is None
    assert f"within 0.5 km of {PRESET}" in driver.find_element(By.ID, "status").text
    assert "wider radius" in driver.find_element(By.CSS_SELECTOR, "#results .empty .hint").text


def test_an_empty_result_in_a_category_names_it(server: str, browser: WebDriver) -> None:
    """An empty result caused by the category said "Nothing found within 5 km of Kreuzberg" and suggested a wider
    radius and the stock box, which cannot help; neither the hint nor the status named the category."""
    driver = browser
    drinks = next(
        c
        for c in httpx.get(server + "/v1/categories", timeout=HTTP_TIMEOUT_S).json()["categories"]
        if c["name"] == "Food"
    )
    drinks = next(c for c in drinks["children"] if c["name"] == "Drinks")
    open_page(driver, server, f"?q=faucet&mode=keyword&near={PRESET}&category={drinks['id']}")
    wait_for(driver, "the empty state", lambda d: settled(d) and d.find_elements(By.CSS_SELECTOR, "#results .empty"))
    assert (
        driver.find_element(By.CSS_SELECTOR, "#results .empty-title").text
        == f"Nothing found in Drinks within 5 km of {PRESET}."
    )
    hint = driver.find_element(By.CSS_SELECTOR, "#results .empty .hint").text
    assert "Or choose All categories: only Drinks was searched." in hint, hint
    status = driver.find_element(By.ID, "status").text
    assert f"No products found for “faucet” in Drinks within 5 km of {PRESET}." in status, status


def test_an_empty_sorted_result_says_the_sort_keeps_close_matches_only(server: str, browser: WebDriver) -> None:
    """Sorted by price, a search whose products are all far from its meaning lists none (engine/ux_ranking.py);
    the empty state suggested other words and a wider radius, which cannot help, and never relevance."""
    driver = browser
    open_page(driver, server, f"?q=xqzv%20blorp&mode=semantic&sort=price&near={PRESET}")
    wait_for(driver, "the empty state", lambda d: settled(d) and d.find_elements(By.CSS_SELECTOR, "#results .empty"))
    hint = driver.find_element(By.CSS_SELECTOR, "#results .empty .hint").text
    assert "Sorted by price, only products close to what you typed are listed: sort by relevance" in hint, hint
    Select(driver.find_element(By.ID, "sort")).select_by_value("relevance")
    assert wait_results(driver, "xqzv blorp")  # by relevance: the nearest, however far


@pytest.mark.parametrize(
    ("link", "said", "asked"),
    [
        ("&radius=999", "The link's radius 999 km is more than 50: 50 km used.", {"radius_m": ["50000"]}),
        ("&radius=0.1", "The link's radius 0.1 km is less than 0.5: 0.5 km used.", {"radius_m": ["500"]}),
        ("&radius=2.3", "The link's radius 2.3 km is between the slider's steps of 0.5: 2.5 km used.", {}),
        ("&radius=abc", "The link's radius “abc” is not a number: 5 km used.", {"radius_m": ["5000"]}),
        ("&category=99999", "The link's category 99999 is not one of the catalogue's: all categories.", {}),
        ("&category=abc", "The link's category abc is not one of the catalogue's: all categories.", {}),
    ],
)
def test_a_link_with_a_radius_or_category_the_page_cannot_use_says_so(
    server: str, browser: WebDriver, link: str, said: str, asked: dict[str, list[str]]
) -> None:
    """A link's radius out of the slider's range was clamped, one not a number dropped, an unknown category
    dropped, all without a word, though the page notes every other link value it cannot use."""
    driver = browser
    open_page(driver, server, "?near=" + PRESET + "&q=milk" + link)
    assert wait_results(driver, "milk")
    status = driver.find_element(By.ID, "status").text
    assert said in status, status
    query = parse_qs(urlsplit(last_search_url(driver)).query)
    assert "category_id" not in query and {k: query[k] for k in asked} == asked, query
    assert "category=" not in driver.current_url, driver.current_url


FIRST = demo_presets().presets[0].name


@pytest.mark.parametrize(
    ("link", "said"),
    [
        (
            "&mode=fuzzy&sort=cheapest&in_stock=no",
            [
                "The link's mode “fuzzy” is not one of hybrid, semantic, keyword: hybrid used.",
                "The link's sort “cheapest” is not one of relevance, distance, price: relevance used.",
                "The link's in_stock “no” is not true or false: only in stock shown.",
            ],
        ),
        ("&at=52.5,200", [f"The link's position “52.5,200” is not a latitude,longitude: showing {FIRST}."]),
        ("&at=91,0", [f"The link's position “91,0” is not a latitude,longitude: showing {FIRST}."]),
        ("&near=anywhere&sort=distance", ["The link's sort by distance needs a place: relevance used."]),
        (  # a link holding both: the place was used and the position dropped without a word
            "&near=" + quote(FIRST) + "&at=52.5,13.4",
            [f"The link names both a place and a position: searching near {FIRST}, not at “52.5,13.4”."],
        ),
        ("&near=anywhere&at=52.5,200", ["The link names both a place and a position: searching anywhere, not at"]),
    ],
)
def test_a_link_with_a_mode_sort_stock_or_position_the_page_cannot_use_says_so(
    server: str, browser: WebDriver, link: str, said: list[str]
) -> None:
    """A link's unknown mode, sort or in_stock, a position off the globe and a distance sort without a place fell
    back to the defaults without a word, though the page notes a bad radius, category or place."""
    driver = browser
    open_page(driver, server, "?q=milk" + link)
    assert wait_results(driver, "milk")
    status = driver.find_element(By.ID, "status").text
    assert all(s in status for s in said), status


def rewrite_answers(driver: WebDriver, edit: str) -> None:
    """Each successful /v1/search answer goes through `edit` (script over its body `b`) before the page reads it."""
    driver.execute_script(
        "const f = window.fetch; window.fetch = async function (u, o) { const r = await f(u, o);"
        " if (!String(u).includes('/v1/search?') || !r.ok) return r; const b = await r.json();"
        + edit
        + " return new Response(JSON.stringify(b), {status: r.status, headers: r.headers}); };"
    )


# One word of 290 letters, no space, as a store may name a product: the first hit's name, brand and store, and the
# first brand and store of the facets.
LONG_WORD = (
    "const long = 'Superlongwordwithoutanybreaks'.repeat(10), hit = b.results[0];"
    " if (hit) { hit.product.name = 'Zebrafrost ' + long; hit.product.brand = long; hit.stores[0].name = long; }"
    " if (b.facets.brand) b.facets.brand[0].value = long; if (b.facets.store) b.facets.store[0].name = long;"
)


def test_a_long_word_in_a_name_keeps_the_page_the_width_of_the_window(server: str, browser: WebDriver) -> None:
    """A product, brand or store name of one long word made the whole page scroll sideways (3,469 px at 1280, 2,869
    px on a 360 px phone): the radar caption, the status once a result was chosen and the facet labels ran on past
    the window, where the result card wrapped the name. The answer is rewritten in the page."""
    driver = browser
    try:
        for width, height, phone in ((1280, 800, False), (360, 740, True)):
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": phone},
            )
            open_page(driver, server, "?near=" + PRESET + "&q=tap+washer")
            assert wait_results(driver, "tap washer")
            rewrite_answers(driver, LONG_WORD)
            before = search_requests(driver)
            type_query(driver, "faucet")
            first = wait_new_answer(driver, before, "faucet")[0]
            driver.execute_script("arguments[0].focus();", first)
            driver.switch_to.active_element.send_keys(Keys.ENTER)
            wait_for(driver, "the radar caption", lambda d: "drawn" in d.find_element(By.ID, "radar-caption").text)
            assert driver.find_element(By.ID, "status").text.startswith("Selected Zebrafrost")
            wide = driver.execute_script(  # the page wider than the window, a text running out of its box
                "const root = document.documentElement, w = root.clientWidth, out = [];"
                "if (root.scrollWidth > w) out.push('page ' + root.scrollWidth);"
                "document.querySelectorAll('#status, #radar-caption, #facets button, #facets .label, #results .name,"
                " #results .brand, #results .store-name').forEach(e => { const r = e.getBoundingClientRect();"
                " if (e.scrollWidth > e.clientWidth + 1 || r.width > w) out.push(`${e.id || e.className} ` +"
                "  `${e.scrollWidth} in ${e.clientWidth} (${Math.round(r.width)} wide)`); });"
                "return out;"
            )
            assert wide == [], (width, wide)
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_a_long_word_in_a_suggestion_keeps_the_page_the_width_of_the_window(server: str, browser: WebDriver) -> None:
    """A suggestion of one long word (a product's name) ran on past the list, its kind cut off, and the whole page
    scrolled sideways (1,224 px on a 500 px window); the names elsewhere wrap. The suggestions are rewritten in the
    page."""
    driver = browser
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": 360, "height": 740, "deviceScaleFactor": 1, "mobile": True}
    )
    try:
        open_page(driver, server, "?near=" + PRESET)
        driver.execute_script(
            "const f = window.fetch; window.fetch = async function (u, o) { const r = await f(u, o);"
            " if (!String(u).includes('/v1/suggest?') || !r.ok) return r; const b = await r.json();"
            " b.suggestions.unshift({kind: 'product', text: 'Zebrafrost' + 'Superlongword'.repeat(20), ref: null});"
            " return new Response(JSON.stringify(b), {status: r.status, headers: r.headers}); };"
        )
        driver.find_element(By.ID, "q").send_keys("faucet")
        wait_for(driver, "the suggestions", suggestions_ready)
        wide = driver.execute_script(
            "const root = document.documentElement, w = root.clientWidth, out = [];"
            "if (root.scrollWidth > w) out.push('page ' + root.scrollWidth);"
            "document.querySelectorAll('#suggestions, #suggestions button').forEach(e => {"
            " if (e.scrollWidth > e.clientWidth + 1)"
            "  out.push(`${e.id || e.className} ${e.scrollWidth} in ${e.clientWidth}`); });"
            "return out;"
        )
        assert wide == [], wide
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


# Pages of 4; a next page (offset=) is answered by `window.proxy` ([status, statusText, body, headers]) while set,
# as a proxy in front of the service answers.
PAGES_OF_4_BEHIND_A_PROXY = (
    "const set = URLSearchParams.prototype.set; URLSearchParams.prototype.set = function (k, v) {"
    " return set.call(this, k, k === 'limit' && v === '20' ? '4' : v); };"
    "window.proxy = null; const f = window.fetch; window.fetch = function (u, o) {"
    " if (!String(u).includes('offset=') || !window.proxy) return f(u, o); const [status, statusText, body, headers]"
    " = window.proxy; return Promise.resolve(new Response(body, {status, statusText, headers})); };"
)


def test_a_failed_next_page_says_what_answered_and_keeps_the_rows_shown(server: str, browser: WebDriver) -> None:
    """A proxy's 502 (an HTML body) to Show more said "Can't reach the search service", where the same answer to a
    search says "Something went wrong (502)"; a 503 ran page 1 again, dropping the pages shown, and while the 503s
    lasted the list went empty. A failed next page now says what answered and leaves the rows and the button."""
    driver = browser
    open_page(driver, server, "?near=" + PRESET + "&q=milk&mode=semantic")
    assert wait_results(driver, "milk")
    driver.execute_script(PAGES_OF_4_BEHIND_A_PROXY)
    before = search_requests(driver)
    type_query(driver, "milk")
    assert len(wait_new_answer(driver, before, "milk")) == 4
    status = driver.find_element(By.ID, "status").text

    def press_more(proxy: list[Any] | None) -> None:
        driver.execute_script("window.proxy = arguments[0];", proxy)
        press(driver, "Show more", (By.CSS_SELECTOR, "#results .more-button"))  # enabled again after a failure

    def error(d: WebDriver) -> str | bool:
        box = d.find_element(By.ID, "error")
        return box.is_displayed() and box.text

    press_more([502, "Bad Gateway", "<html>Bad gateway</html>", {"Content-Type": "text/html"}])
    said = wait_for(driver, "the error", error)
    assert "Something went wrong (502)." in said and "Bad Gateway" in said and "reach" not in said, said
    busy = {"Content-Type": "application/json", "Retry-After": "1"}
    before = search_requests(driver)
    press_more([503, "Service Unavailable", '{"error": {"message": "not ready"}}', busy])
    said = wait_for(driver, "the busy error", lambda d: "busy" in (text := error(d) or "") and text)
    assert "not ready (try again in 1 s)" in said, said
    # No search is pending: one scheduled (or run) again marks the results busy at once, whatever the machine's load
    assert settled(driver), "a search of page 1 is pending again"
    time.sleep(2.5)  # a retry of page 1 would have come and gone
    assert search_requests(driver) == before, "the search ran again"
    assert len(driver.find_elements(By.CSS_SELECTOR, "#results li.result")) == 4
    assert driver.find_element(By.ID, "status").text == status
    press_more(None)  # the button is there to press again, and the error goes with the page it brings
    wait_for(driver, "the next page", lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results li.result")) == 8)
    assert not driver.find_element(By.ID, "error").is_displayed()


def test_prices_in_several_currencies_are_said_to_be_compared_as_numbers(server: str, browser: WebDriver) -> None:
    """Stores of two currencies in one search: sorted by price the list went $0.50, €1.99, €2.50 and the price buckets
    read "0–4.99" without a word that the API compares prices as numbers, unconverted (docs/search-features.md: "a
    front end showing mixed currencies should say so"). The first hit's first store is made a USD one in the page."""
    driver = browser
    open_page(driver, server, "?near=" + PRESET + "&q=tap+washer&mode=keyword")
    assert wait_results(driver, "tap washer")
    driver.execute_script("window.usd = true;")
    rewrite_answers(driver, "if (window.usd && b.results[0]) b.results[0].stores[0].currency = 'USD';")
    said = "Prices in EUR and USD are compared as numbers, not converted."
    before = search_requests(driver)
    Select(driver.find_element(By.ID, "sort")).select_by_value("price")
    items = wait_new_answer(driver, before, "tap washer")
    assert "$" in items[0].find_element(By.CSS_SELECTOR, ".price").text
    assert said in driver.find_element(By.ID, "status").text
    price = next(g for g in driver.find_elements(By.CSS_SELECTOR, "#facets .facet-group") if g.text.startswith("Price"))
    assert price.find_element(By.CSS_SELECTOR, ".facet-note").text == said
    driver.execute_script("window.usd = false;")  # one currency: nothing to say
    before = search_requests(driver)
    type_query(driver, "faucet")
    wait_new_answer(driver, before, "faucet")
    assert "compared as numbers" not in driver.find_element(By.ID, "status").text
    assert not driver.find_elements(By.CSS_SELECTOR, "#facets .facet-note")


def test_the_page_title_names_the_search(server: str, browser: WebDriver) -> None:
    """Every search (each its own history entry) was titled "Plinqy — search near me": the tab and the Back menu
    could not tell them apart, and a screen reader said the same title on every step. Now the title says it."""
    driver = browser
    open_page(driver, server, "?near=" + PRESET)
    assert driver.title == "Plinqy — search near me"
    type_query(driver, "milk")
    driver.find_element(By.ID, "q").send_keys(Keys.ENTER)
    wait_results(driver, "milk")
    assert driver.title == f"“milk” near {PRESET} – Plinqy"
    type_query(driver, "tap washer")
    driver.find_element(By.ID, "q").send_keys(Keys.ENTER)
    wait_results(driver, "tap washer")
    assert driver.title == f"“tap washer” near {PRESET} – Plinqy"
    driver.back()
    wait_for(driver, "the title of the search before", lambda d: d.title == f"“milk” near {PRESET} – Plinqy")
    driver.execute_script(  # a query the API refuses (a tab in it): the title says the search failed
        "const q = document.getElementById('q'); q.value = 'tap\\twasher';"
        "q.dispatchEvent(new Event('input', {bubbles: true}));"
    )
    wait_for(
        driver, "the error's title", lambda d: d.title.startswith("Error – “tap washer”")
    )  # a title's tab is a space


def test_back_and_forward_step_through_the_searches(server: str, browser: WebDriver) -> None:
    """The address bar kept the search with replaceState alone: Back left the page (about:blank here) rather than
    going back to the search before. A search asked for (Enter, a place, a sort, a facet) is a history entry now, and
    a typed query one (its later keystrokes replace it); Back and Forward put the search back and run it."""
    driver = browser
    driver.get("about:blank")
    open_page(driver, server, "?q=milk&mode=semantic")
    assert wait_results(driver, "milk")
    type_query(driver, "bread")  # five keystrokes, one entry (Back goes from "bread" to "milk")
    wait_results(driver, "bread")
    before = search_requests(driver)
    Select(driver.find_element(By.ID, "location")).select_by_visible_text(PRESET)
    wait_new_answer(driver, before, "bread")
    before = search_requests(driver)
    Select(driver.find_element(By.ID, "sort")).select_by_value("price")
    wait_new_answer(driver, before, "bread")

    def step(go: Callable[[], None], query: str) -> dict[str, list[str]]:
        before = search_requests(driver)
        go()
        wait_new_answer(driver, before, query)
        assert driver.find_element(By.ID, "q").get_attribute("value") == query
        return parse_qs(urlsplit(last_search_url(driver)).query)

    asked = step(driver.back, "bread")  # Kreuzberg by relevance
    assert "sort" not in asked and driver.find_element(By.ID, "sort").get_attribute("value") == "relevance"
    assert "near=Kreuzberg" in driver.current_url and "sort=" not in driver.current_url
    kreuzberg = asked["lat"]
    asked = step(driver.back, "bread")  # the first place, as typed
    assert asked["lat"] != kreuzberg and "near=Kreuzberg" not in driver.current_url
    assert Select(driver.find_element(By.ID, "location")).first_selected_option.text == FIRST
    asked = step(driver.back, "milk")
    assert asked["mode"] == ["semantic"] and "q=milk" in driver.current_url
    assert step(driver.forward, "bread")["lat"] != kreuzberg


def test_a_query_typed_after_another_s_answer_was_read_is_an_entry_of_its_own(server: str, browser: WebDriver) -> None:
    """A typed query's keystrokes replace its history entry; every later query typed did too, however long its
    answer had been read: "milk" typed, read, then "bread" typed over it, and Back went past "milk" to the empty
    page. A pause of more than the page's DRAFT_MS (3 s) between typed searches ends the entry: Back goes to "milk"."""
    driver = browser
    driver.get("about:blank")
    open_page(driver, server, "?near=" + PRESET)
    type_query(driver, "milk")
    assert wait_results(driver, "milk")
    time.sleep(3.5)  # the shopper reads the answer
    type_query(driver, "bread")
    assert wait_results(driver, "bread")
    before = search_requests(driver)
    driver.back()
    wait_new_answer(driver, before, "milk")
    assert driver.find_element(By.ID, "q").get_attribute("value") == "milk"
    assert "q=milk" in driver.current_url, driver.current_url
