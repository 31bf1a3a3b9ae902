/* Plinqy "search near me": plain JS, no dependencies, no build step.
 *
 * Searches as you type (debounced), aborts the request in flight when a newer one starts (and ignores any
 * answer that is not the latest), draws the selected product's stores on an SVG radar around you.
 * Talks only to this service: /v1/search, /v1/suggest, /v1/categories, /v1/presets, /v1/stores/nearby.
 * Facets: the column's counts are links; a chosen brand, store or price range is a filter
 * (`state.chosen`), a chosen category sets the category select. Suggestions appear under the box as you type;
 * a category or brand suggestion applies its filter too.
 */
(function () {
  "use strict";

  var DEBOUNCE_MS = 250;
  // Typed searches further apart than this are two queries (the first one's answer read): two history entries
  var DRAFT_MS = 3000;
  var SUGGEST_MAX_CHARS = 100; // engine/suggest.py PREFIX_MAX_LENGTH
  var MAX_OFFSET = 1000; // api/params.py MAX_OFFSET: the API refuses a page that starts past it
  var RADAR_R = 100; // the radius circle, in SVG units (viewBox is ±120)
  var SVG_NS = "http://www.w3.org/2000/svg";

  var $ = function (id) { return document.getElementById(id); };
  var BASE_TITLE = document.title;
  var els = {
    form: $("search-form"), q: $("q"), location: $("location"), locate: $("locate"), city: $("city-name"),
    radius: $("radius"), radiusOut: $("radius-out"), mode: $("mode"), category: $("category"),
    inStock: $("in-stock"), status: $("status"), error: $("error"), badge: $("badge"),
    results: $("results"), radar: $("radar"), radarCaption: $("radar-caption"),
    sort: $("sort"), delivers: $("delivers"), facets: $("facets"), suggestions: $("suggestions")
  };
  var FACETS = "category,brand,price,store";

  var state = {
    presets: [],          // [{name, lat, lon}]
    me: null,             // {lat, lon, shared}: the browser's geolocation, or a link's `at` (shared: not this user's)
    response: null,       // the last successful /v1/search body
    params: null,         // the parameters it answered
    selected: -1,         // index of the selected result
    stores: {},           // "lat,lon,radius" -> {id: {lat, lon}} from /v1/stores/nearby
    searchCtl: null,      // AbortController of the search in flight
    storesCtl: null,
    seq: 0,               // number of the latest search; older answers are dropped
    timer: 0,
    chosen: {},           // facet values chosen: brand, store_id, min_price, max_price
    suggestCtl: null,
    facetFocus: null,     // the label of the facet button just pressed, focused again once redrawn
    linkNote: "",         // what the link held that the page ignores (a place, a facet value), said once
    suggestTimer: 0,
    suggestAsked: 0,      // keystrokes in the box: the list answers the text once the last one's answer is drawn
    moreCtl: null,        // AbortController of the Show-more page in flight
    url: "",              // the address last written (a search's history entry)
    draft: false,         // that entry is a typed query's: its next keystrokes replace it
    typedAt: 0            // when a typed search last wrote the address (performance.now())
  };

  // --- formatting (the e2e test formats the API's numbers the same way)
  function formatDistance(m) {
    if (m === null || m === undefined) return "";
    return m < 1000 ? Math.round(m) + " m" : (m / 1000).toFixed(1) + " km";
  }
  /** As many decimals as it has, up to metres: half of 0.5 km is "0.25 km" (one decimal said "0.3 km"). */
  function formatKm(km) { return String(Math.round(km * 1000) / 1000) + " km"; }
  function formatPrice(price, currency) {
    try {
      return new Intl.NumberFormat("en", { style: "currency", currency: currency || "EUR" }).format(price);
    } catch (e) {
      return price.toFixed(2) + " " + (currency || "");
    }
  }
  function formatStock(q) { return q > 0 ? q + " in stock" : "out of stock"; }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG_NS, tag);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // --- inputs
  function radiusKm() { return parseFloat(els.radius.value); }
  function showRadius() {
    var text = formatKm(radiusKm());
    els.radiusOut.textContent = text;
    els.radius.setAttribute("aria-valuetext", text);
  }

  /** The chosen point: {lat, lon, label}, or null for "anywhere". */
  function currentLocation() {
    var v = els.location.value;
    if (v === "me" && state.me) {  // a link's position is whoever sent it: "your location" placed the stores near you
      return { lat: state.me.lat, lon: state.me.lon, label: state.me.shared ? "the shared location" : "your location" };
    }
    if (v.indexOf("preset:") === 0) {
      var p = state.presets[parseInt(v.slice(7), 10)];
      if (p) return { lat: p.lat, lon: p.lon, label: p.name };
    }
    return null;
  }

  /** Only the stores delivering to the place count (fulfilment=delivery), however far away. */
  function delivering() { return els.delivers.checked && currentLocation() !== null; }

  /** Without a place, the distance sort, "delivers to me" and the radius mean nothing: say so rather than
   *  dropping them from the request while they look set. "Delivers to me" keeps the stores delivering to the
   *  place however far away they are: the radius changes nothing then, so it is off too. */
  function syncPlaceControls() {
    var none = currentLocation() === null;
    var why = none ? "Choose a place first" : "";
    els.delivers.disabled = none;
    els.delivers.title = why;
    els.radius.disabled = none || els.delivers.checked;
    els.radius.title = none ? why : els.delivers.checked ? "Off while “Delivers to me” is on" : "";
    var distance = els.sort.querySelector('option[value="distance"]');
    if (distance) { distance.disabled = none; distance.title = why; }
    var reset = none && els.sort.value === "distance";
    if (reset) els.sort.value = "relevance";
    return reset;
  }

  function searchParams() {
    var params = new URLSearchParams();
    params.set("q", els.q.value);
    var loc = currentLocation();
    if (loc) {
      params.set("lat", String(loc.lat));
      params.set("lon", String(loc.lon));
      params.set("radius_m", String(Math.round(radiusKm() * 1000)));
    }
    params.set("mode", els.mode.value);
    params.set("in_stock", els.inStock.checked ? "true" : "false");
    if (els.category.value) params.set("category_id", els.category.value);
    params.set("facets", FACETS);
    if (els.sort.value !== "relevance" && (loc || els.sort.value !== "distance")) params.set("sort", els.sort.value);
    if (els.delivers.checked && loc) params.set("fulfilment", "delivery");
    Object.keys(state.chosen).forEach(function (k) { params.set(k, String(state.chosen[k])); });
    params.set("limit", "20");
    params.set("stores_per_product", "3");
    return params;
  }

  /** Mirror the inputs in the address bar, so a search can be shared or reloaded, and Back goes to the one before
   *  (with replaceState alone Back left the page): `how` "push" (a search asked for: Enter, a menu, a facet) adds a
   *  history entry, "typed" adds one at a query's first keystrokes and the next ones replace it (not an entry a
   *  keystroke) until a pause of DRAFT_MS, "replace" (a link's search, a retry) adds none. */
  function saveToUrl(how) {
    var u = new URLSearchParams();
    if (els.q.value) u.set("q", els.q.value);
    var v = els.location.value;
    if (v.indexOf("preset:") === 0) {
      var p = state.presets[parseInt(v.slice(7), 10)];
      if (p) u.set("near", p.name);
    } else if (v === "") {
      u.set("near", "anywhere");
    } else if (v === "me" && state.me) {  // kept: a reload or a shared link went back to the first neighbourhood
      u.set("at", atText(state.me));
    }
    u.set("radius", els.radius.value);
    u.set("mode", els.mode.value);
    if (!els.inStock.checked) u.set("in_stock", "false");
    if (els.category.value) u.set("category", els.category.value);
    if (els.sort.value !== "relevance") u.set("sort", els.sort.value);
    if (els.delivers.checked) u.set("delivers", "1");
    ["brand", "store_id", "min_price", "max_price"].forEach(function (k) {  // the facet values chosen
      if (state.chosen[k] !== undefined) u.set(k, String(state.chosen[k]));
    });
    var url = "?" + u.toString();
    // a pause ends the typed query's entry: "bread" typed over "milk" once read replaced it, and Back skipped "milk"
    if (how === "typed" && performance.now() - state.typedAt > DRAFT_MS) state.draft = false;
    if (how === "typed") state.typedAt = performance.now();
    var push = how !== "replace" && url !== window.location.search && !(how === "typed" && state.draft);
    if (push || how !== "typed") state.draft = push && how === "typed";
    state.url = url;
    try {
      if (push) history.pushState(null, "", url); else history.replaceState(null, "", url);
    } catch (e) { /* file: or sandboxed */ }
  }

  /** A position as `at` writes it. The tab remembers the one it located (sessionStorage): a reload or Back from
   *  another site read the address's `at` as a link's, "Shared location (from the link)", of the shopper's own. */
  var OWN_AT = "plinqy.at";
  function atText(p) { return p.lat.toFixed(5) + "," + p.lon.toFixed(5); }
  function rememberOwn(p) { try { sessionStorage.setItem(OWN_AT, atText(p)); } catch (e) { /* storage off */ } }
  function isOwn(p) { try { return sessionStorage.getItem(OWN_AT) === atText(p); } catch (e) { return false; } }

  /** Back or Forward to another search's entry: its inputs and facet values put back, and the search run again. */
  function restoreEntry() {
    if (window.location.search === state.url) return; // the same search (the skip link's #results)
    dropSuggestions();
    els.form.reset(); // what the entry leaves out is the default, as on a load
    state.chosen = {};
    var r = restoreFromUrl();
    restoreCategory(r.category);
    var wanted = r.near ? presetIndex(r.near) : null;
    if (wanted !== null) els.location.value = wanted < 0 ? "" : "preset:" + wanted;
    else if (r.at && state.me) els.location.value = "me"; // written from it: the position this page holds
    else if (state.presets.length) els.location.value = "preset:0";
    showRadius();
    syncPlaceControls();
    runSearch("replace");
  }

  var UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i; // as the API writes ids
  var MAX_PRICE = 9999999999.99; // ingest/numbers.py MAX_PRICE, what a listing holds (the API's filters take it)
  var BRAND_MAX_CHARS = 200; // api/params.py BRAND_MAX_LENGTH, in characters (code points), as Python counts them
  // engine/text.py INVISIBLE_CHARS: what renders as nothing, which the API trims with the spaces (a brand of a
  // right-to-left mark or a soft hyphen is empty to it)
  var INVISIBLE_CHARS = "\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u180e" +
    "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\u2800\u3164\ufeff\uffa0\ufff9-\ufffb";
  var BLANK_ENDS = new RegExp("^[\\s" + INVISIBLE_CHARS + "]+|[\\s" + INVISIBLE_CHARS + "]+$", "g");

  /** A link's brand as the API judges it: trimmed of spaces and invisible characters, at most BRAND_MAX_CHARS
   *  code points (an emoji is one, two UTF-16 units) as sent or composed (a decomposed é is one, as stored), no
   *  control characters: whether the API takes it. */
  function brandTaken(brand) {
    var text = brand.replace(BLANK_ENDS, "");
    var fits = Math.min(Array.from(text).length, Array.from(text.normalize("NFC")).length) <= BRAND_MAX_CHARS;
    return text !== "" && fits && !/[\x00-\x1f\x7f-\x9f]/.test(brand);
  }

  /** The link's facet values the API would take; one it would refuse is left out, with a note (it was sent, and
   *  every later search failed on it with no control to mark or change). */
  function restoreChosen(u) {
    var ignored = [];
    var price = function (k) {
      var raw = (u.get(k) || "").trim(), v = Number(raw);
      if (raw !== "" && isFinite(v) && v >= 0 && v <= MAX_PRICE) return v;
      if (u.get(k)) ignored.push(k + " “" + u.get(k) + "”");
      return undefined;
    };
    var low = price("min_price"), high = price("max_price");
    if (low !== undefined && high !== undefined && low > high) {
      ignored.push("min_price " + low + " above max_price " + high);
      low = high = undefined;
    }
    if (low !== undefined) state.chosen.min_price = low;
    if (high !== undefined) state.chosen.max_price = high;
    var brand = u.get("brand");
    if (brand !== null && brandTaken(brand)) state.chosen.brand = brand;
    else if (brand) ignored.push("brand “" + brand + "”");
    var store = u.get("store_id");
    if (store !== null && UUID_RE.test(store)) state.chosen.store_id = store;
    else if (store) ignored.push("store_id “" + store + "”");
    if (ignored.length) state.linkNote += "The link's " + ignored.join(", ") + " ignored (not a valid value). ";
  }

  /** The slider takes 0.5 to 50 km in steps of 0.5; a link's other value is said, not dropped or moved silently. */
  function restoreRadius(raw) {
    var text = (raw || "").trim(), r = Number(text);
    if (text === "") return;
    if (!isFinite(r)) {
      state.linkNote += "The link's radius “" + raw + "” is not a number: " + formatKm(radiusKm()) + " used. ";
      return;
    }
    els.radius.value = String(r); // the input clamps it to its range and rounds it to its step
    var used = formatKm(radiusKm());
    if (r > 50) state.linkNote += "The link's radius " + formatKm(r) + " is more than 50: " + used + " used. ";
    else if (r < 0.5) state.linkNote += "The link's radius " + formatKm(r) + " is less than 0.5: " + used + " used. ";
    else if (radiusKm() !== r) state.linkNote += "The link's radius " + formatKm(r) + " is between the slider's " +
      "steps of 0.5: " + used + " used. ";
  }

  function restoreFromUrl() {
    var u = new URLSearchParams(window.location.search);
    if (u.has("q")) els.q.value = u.get("q");
    restoreRadius(u.get("radius"));
    restoreSelect(u, "mode", els.mode);
    restoreSelect(u, "sort", els.sort);
    var stock = u.get("in_stock");
    if (stock === "false") els.inStock.checked = false;
    else if (stock && stock !== "true") state.linkNote += "The link's in_stock “" + stock + "” is not true or " +
      "false: only in stock shown. ";
    if (u.get("delivers") === "1") els.delivers.checked = true;
    restoreChosen(u);
    var at = (u.get("at") || "").split(",").map(Number);
    var point = at.length === 2 && Math.abs(at[0]) <= 90 && Math.abs(at[1]) <= 180 && at.every(isFinite)
      && (u.get("at") || "").trim() !== "" ? { lat: at[0], lon: at[1], shared: true } : null;
    if (point && isOwn(point)) point.shared = false; // this tab's own, written by "Use my location"
    var badAt = u.get("at") && !point ? u.get("at") : null; // said once the place it falls back to is known
    return { near: u.get("near"), category: u.get("category"), at: point, badAt: badAt };
  }

  /** A link's value the menu does not offer keeps the default, with a note (it was dropped without a word). */
  function restoreSelect(u, key, select) {
    var v = u.get(key);
    if (!v) return;
    var offered = Array.prototype.map.call(select.options, function (o) { return o.value; });
    if (offered.indexOf(v) >= 0) select.value = v;
    else state.linkNote += "The link's " + key + " “" + v + "” is not one of " + offered.join(", ") + ": " +
      select.value + " used. ";
  }

  // --- status, errors, loading
  function setStatus(text) { els.status.textContent = text; }
  /** `before`, a name isolated (<bdi>: a right-to-left name pulled the colon and numbers after it across), `after`. */
  function named(target, name, after, before) {
    target.replaceChildren(document.createTextNode(before || ""), el("bdi", null, name), document.createTextNode(after));
  }
  /** Said once, before the first answer's status: what the link held that the page ignores. */
  function takeLinkNote() { var note = state.linkNote; state.linkNote = ""; return note; }
  function showError(title, detail) {
    markInvalid(null);
    els.error.replaceChildren();
    els.error.appendChild(el("strong", "error-title", title));
    if (detail) els.error.appendChild(el("span", "error-detail", detail));
    els.error.hidden = false;
  }
  function clearError() { els.error.hidden = true; els.error.replaceChildren(); markInvalid(null); }
  /** The control of a refused parameter is marked invalid and described by the error; null clears the mark. */
  var PARAM_CONTROLS = { q: "q", lat: "location", lon: "location", radius_m: "radius", category_id: "category",
    mode: "mode", in_stock: "in-stock", sort: "sort", fulfilment: "delivers" };
  function markInvalid(param) {
    document.querySelectorAll("[aria-invalid]").forEach(function (c) {
      c.removeAttribute("aria-invalid");
      var by = (c.getAttribute("aria-describedby") || "").split(" ")
        .filter(function (id) { return id && id !== "error"; });
      if (by.length) c.setAttribute("aria-describedby", by.join(" ")); else c.removeAttribute("aria-describedby");
    });
    var control = param && PARAM_CONTROLS[param] ? $(PARAM_CONTROLS[param]) : null;
    if (!control) return;
    control.setAttribute("aria-invalid", "true");
    control.setAttribute("aria-describedby", ((control.getAttribute("aria-describedby") || "") + " error").trim());
  }
  /** The results are busy (aria-busy) from the moment a search is pending, its keystrokes' pause included, until its
   *  answer is drawn: they are an older question's meanwhile. The spinner (is-loading) shows a request in flight. */
  function setLoading(on) {
    els.results.setAttribute("aria-busy", on ? "true" : "false");
    document.body.classList.toggle("is-loading", on);
  }

  // --- search
  function scheduleSearch(delay) {
    clearTimeout(state.timer);
    // What is in flight answers a question the user is no longer asking: cancel it now, drop its answer.
    if (state.searchCtl) { state.searchCtl.abort(); state.searchCtl = null; }
    dropMore();
    state.facetFocus = null; // a facet pressed before is not where the user is now: its answer must not pull the focus
    state.seq++;
    els.results.setAttribute("aria-busy", "true"); // what is shown answers an older question until the search runs
    state.timer = setTimeout(function () { runSearch("typed"); }, delay === undefined ? DEBOUNCE_MS : delay);
  }

  /** A next page belongs to the search it continues: once another is pending, it is not wanted. */
  function dropMore() {
    if (state.moreCtl) { state.moreCtl.abort(); state.moreCtl = null; }
  }

  /** The tab's and the history entry's name says the search (every entry was "Plinqy — search near me"). */
  function titleFor(params, error) {
    var loc = currentLocation(), q = params ? params.get("q") : "";
    if (!q) return BASE_TITLE;
    return (error ? "Error – " : "") + "“" + q + "”" + (loc ? " near " + loc.label : "") + " – Plinqy";
  }

  /** `how` the address bar keeps it (saveToUrl): by default a history entry of its own. */
  function runSearch(how) {
    clearTimeout(state.timer);
    saveToUrl(how || "push");
    if (state.searchCtl) state.searchCtl.abort();
    state.searchCtl = null;
    dropMore();
    var seq = ++state.seq;
    if (els.q.value.trim() === "") {
      setLoading(false);
      clearError();
      state.response = null;
      renderResults();
      document.title = titleFor(null);
      setStatus("Type what you are looking for.");
      return;
    }
    var params = searchParams();
    var ctl = new AbortController();
    state.searchCtl = ctl;
    setLoading(true);
    setStatus("Searching…");
    fetch("/v1/search?" + params.toString(), { signal: ctl.signal, headers: { Accept: "application/json" } })
      .then(readAnswer)
      .then(function (r) {
        if (seq !== state.seq) return; // a newer search started meanwhile
        state.searchCtl = null;
        setLoading(false);
        if (r.res.ok && r.body && Array.isArray(r.body.results)) {
          clearError();
          state.response = r.body;
          state.params = params;
          renderResults();
          document.title = titleFor(params);
          return;
        }
        state.response = null;
        renderResults();
        document.title = titleFor(params, true);
        setStatus(""); // the error is said once, by the alert (the status, a live region too, said it again)
        failed(r.res, r.body);
      })
      .catch(function (err) {
        if (err && err.name === "AbortError") return;
        if (seq !== state.seq) return;
        state.searchCtl = null;
        setLoading(false);
        state.response = null;
        renderResults();
        document.title = titleFor(params, true);
        setStatus("");
        showError("Can't reach the search service.", "Check your connection and try again.");
      });
  }

  /** The answer with its body, null where that is no JSON (a proxy's HTML page): its status is said all the same. */
  function readAnswer(res) {
    return res.text().then(function (text) {
      var body = null;
      try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
      return { res: res, body: body };
    });
  }

  /** Says why a search (or, `nextPage`, a Show-more page) got no results. */
  function failed(res, body, nextPage) {
    var err = body && body.error ? body.error : null;
    var message = err && err.message ? err.message : res.statusText || "unexpected answer";
    if (res.status === 400) {
      var what = err && err.parameter ? describeParam(err.parameter) : "The search";
      if (err && err.parameter && state.chosen[err.parameter] !== undefined) {
        // A facet value has no control to correct it with: left out, said in the status, and the search run again
        // without it (it showed the error alone, with no results, until something else changed).
        state.linkNote += what + " “" + state.chosen[err.parameter] + "” " + message + ": left out. ";
        delete state.chosen[err.parameter];
        runSearch("replace");
        return;
      }
      showError("That search can't run.", what + " " + message + ".");
      if (err && err.parameter) markInvalid(err.parameter);
    } else if (res.status === 503) {
      var after = res.headers.get("Retry-After");
      showError("The service is busy or still starting.",
        message + (after ? " (try again in " + after + " s)" : ""));
      // a next page is pressed again: running page 1 again dropped the rows shown
      if (!nextPage) scheduleSearch(Math.max(1, parseInt(after || "2", 10)) * 1000);
    } else {
      showError("Something went wrong (" + res.status + ").", message);
    }
  }

  function describeParam(p) {
    var names = { q: "The query", lat: "The latitude", lon: "The longitude", radius_m: "The radius",
      category_id: "The category", mode: "The mode", in_stock: "The in-stock filter", brand: "The brand",
      store_id: "The store", min_price: "The lowest price", max_price: "The highest price" };
    return names[p] || "The parameter “" + p + "”";
  }

  // --- results
  // --- facets: each value a button with its count; pressing it filters, pressing it again clears it
  function facetButton(label, count, pressed, onPress) {
    var b = el("button", "facet");
    b.type = "button";
    b.setAttribute("aria-pressed", pressed ? "true" : "false");
    b.appendChild(el("span", "label", label));
    b.appendChild(el("span", "count", String(count)));
    b.dataset.facet = label;
    b.addEventListener("click", function () {
      state.facetFocus = label; // the buttons are drawn again with the answer: the focus goes back to this one
      onPress();
    });
    var li = el("li");
    li.appendChild(b);
    return li;
  }

  function facetGroup(title, items) {
    if (!items || items.length === 0) return;
    var box = el("section", "facet-group");
    box.appendChild(el("h3", null, title));
    var ul = el("ul");
    items.forEach(function (li) { ul.appendChild(li); });
    box.appendChild(ul);
    els.facets.appendChild(box);
    return box;
  }

  function choose(changes) {
    Object.keys(changes).forEach(function (k) {
      if (changes[k] === null) delete state.chosen[k]; else state.chosen[k] = changes[k];
    });
    runSearch();
  }

  /** As the API's brand filter compares them (case and accents aside): a link's "forge" is the listed "Forge". */
  function sameBrand(a, b) {
    var fold = function (s) { return s.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase(); };
    return typeof a === "string" && typeof b === "string" && fold(a.trim()) === fold(b.trim());
  }

  /** The first `max` values, and the chosen one wherever it is (past them, or not listed: `fallback`), so its
   *  pressed button is always there to clear it. */
  function withChosen(values, max, isChosen, fallback) {
    var all = values || [];
    var shown = all.slice(0, max);
    if (!fallback || shown.some(isChosen)) return shown;
    return shown.concat([all.slice(max).find(isChosen) || fallback]);
  }

  function renderFacets(facets) {
    els.facets.replaceChildren();
    if (!facets) return;
    var c = state.chosen;
    facetGroup("Category", (facets.category || []).slice(0, 12).map(function (f) {
      var on = els.category.value === String(f.id);
      return facetButton(f.name, f.count, on, function () { els.category.value = on ? "" : String(f.id); runSearch(); });
    }));
    var brands = withChosen(facets.brand, 10, function (f) { return sameBrand(f.value, c.brand); },
      c.brand === undefined ? null : { value: c.brand, count: 0 });
    facetGroup("Brand", brands.map(function (f) {
      var on = sameBrand(f.value, c.brand);
      return facetButton(f.value, f.count, on, function () { choose({ brand: on ? null : f.value }); });
    }));
    // Numbers alone: a bucket counts the whole set, whose listings may be in any currency (the API compares prices
    // as numbers); the page's own hits, which once named the currency, say nothing of the rest. Mixed, they say so.
    var price = facetGroup("Price", (facets.price || []).map(function (f) {
      var on = c.min_price === f.min && c.max_price === (f.max === null ? undefined : f.max);
      var label = f.max === null ? "from " + f.min : f.min + "–" + f.max;
      return facetButton(label, f.count, on, function () {
        choose(on ? { min_price: null, max_price: null } : { min_price: f.min, max_price: f.max });
      });
    }));
    if (price && currencyNote()) price.appendChild(el("p", "hint facet-note", currencyNote()));
    var stores = withChosen(facets.store, 8, function (f) { return f.id === c.store_id; },
      c.store_id === undefined ? null : { id: c.store_id, name: "The chosen store", count: 0 });
    facetGroup("Store", stores.map(function (f) {
      var on = c.store_id === f.id;
      return facetButton(f.name, f.count, on, function () { choose({ store_id: on ? null : f.id }); });
    }));
    if (state.facetFocus !== null) {
      var again = Array.prototype.find.call(els.facets.querySelectorAll("button"), function (b) {
        return b.dataset.facet === state.facetFocus;
      });
      state.facetFocus = null;
      // back to the button only where the redraw dropped the focus: not from a control the user went on to
      var fell = document.activeElement === document.body || !document.contains(document.activeElement);
      if (again && fell) again.focus();
    }
  }

  /** The page's prices in more than one currency, said (docs/search-features.md asks it of a front end): the API
   *  sorts, filters and buckets them as numbers, unconverted ($0.50 before €1.99). "" for one currency. */
  function currencyNote() {
    var seen = {};
    (state.response ? state.response.results : []).forEach(function (hit) {
      hit.stores.forEach(function (s) { if (s.currency) seen[s.currency] = true; });
    });
    var codes = Object.keys(seen).sort();
    if (codes.length < 2) return "";
    return "Prices in " + codes.slice(0, -1).join(", ") + " and " + codes[codes.length - 1] +
      " are compared as numbers, not converted.";
  }

  // --- suggestions under the search box
  /** The list is busy (aria-busy) from a keystroke until the list for the box's text is drawn, or the list dropped. */
  function suggestionsBusy(on) { els.suggestions.setAttribute("aria-busy", on ? "true" : "false"); }
  function hideSuggestions() {
    els.suggestions.hidden = true;
    els.suggestions.replaceChildren();
    els.q.setAttribute("aria-expanded", "false");
    els.q.removeAttribute("aria-activedescendant");
  }

  /** The ARIA combobox pattern: the focus stays in the box, ↓/↑ move the option it points at (-1: none). The
   *  options were focused themselves, so Space (a button's click) picked one and the words after it were glued on. */
  function options() { return Array.prototype.slice.call(els.suggestions.querySelectorAll('[role="option"]')); }
  function pointedOption() {
    return options().findIndex(function (o) { return o.getAttribute("aria-selected") === "true"; });
  }
  function pointAt(i) {
    options().forEach(function (o, k) { o.setAttribute("aria-selected", k === i ? "true" : "false"); });
    if (i >= 0) els.q.setAttribute("aria-activedescendant", "suggestion-" + i);
    else els.q.removeAttribute("aria-activedescendant");
  }

  /** Closes the list for good: one still to come (the timer, the request in flight) must not reopen it. */
  function dropSuggestions() {
    clearTimeout(state.suggestTimer);
    if (state.suggestCtl) state.suggestCtl.abort();
    hideSuggestions();
    suggestionsBusy(false);
  }

  /** The box takes the suggestion's text; a category one also sets the picker, a brand one the brand facet (they
   *  only ran a text search for the name). A category's name ranks its products by meaning: keyword mode, which
   *  matches the words of names and brands, found none of them ("Plumbing" names no product), so it goes to
   *  hybrid, said in the status. */
  function pickSuggestion(s) {
    els.q.value = s.text;
    els.q.focus(); // before the list (and its buttons) goes: the focus fell to <body>
    dropSuggestions(); // a keystroke's list still to come reopened it over the search
    var ref = s.ref === null || s.ref === undefined ? "" : String(s.ref);
    if (s.kind === "category" && ref && els.category.querySelector('option[value="' + CSS.escape(ref) + '"]')) {
      els.category.value = ref;
      if (els.mode.value === "keyword") {
        els.mode.value = "hybrid";
        state.linkNote += "Exact words (keyword) match product names, not categories: Hybrid shows " + s.text +
          "'s products. ";
      }
    }
    if (s.kind === "brand") state.chosen.brand = s.text;
    runSearch();
  }

  function loadSuggestions() {
    var text = els.q.value.trim(), asked = state.suggestAsked;
    var latest = function () { return asked === state.suggestAsked; }; // no keystroke since: the answer is the box's
    if (state.suggestCtl) state.suggestCtl.abort();
    // Past what /v1/suggest takes (100 characters) nothing completes: an old list must not stay on screen.
    if (!text || text.length > SUGGEST_MAX_CHARS) { hideSuggestions(); suggestionsBusy(false); return; }
    var q = new URLSearchParams({ q: text, limit: "8" });
    var loc = currentLocation();
    if (loc) {
      q.set("lat", String(loc.lat)); q.set("lon", String(loc.lon));
      q.set("radius_m", String(Math.round(radiusKm() * 1000)));
    }
    var ctl = new AbortController();
    state.suggestCtl = ctl;
    fetch("/v1/suggest?" + q.toString(), { signal: ctl.signal })
      .then(function (res) { if (!res.ok) throw new Error(String(res.status)); return res.json(); })
      .then(function (body) {
        els.suggestions.replaceChildren();
        els.q.removeAttribute("aria-activedescendant");
        body.suggestions.forEach(function (s, k) {
          var b = el("button", "suggestion");
          b.type = "button";
          b.id = "suggestion-" + k;
          b.tabIndex = -1; // reached from the box (aria-activedescendant), never focused from the keyboard
          b.setAttribute("aria-selected", "false");
          b.setAttribute("role", "option"); // the option itself (it was a button inside an option)
          b.appendChild(el("span", null, s.text));
          b.appendChild(el("span", "kind", s.kind));
          b.setAttribute("aria-label", s.text + ", " + s.kind); // read as one word, "Oatfieldbrand", without it
          b.addEventListener("click", function () { pickSuggestion(s); });
          var li = el("li");
          li.setAttribute("role", "none");
          li.appendChild(b);
          els.suggestions.appendChild(li);
        });
        els.suggestions.hidden = body.suggestions.length === 0 || !els.q.parentNode.contains(document.activeElement);
        els.q.setAttribute("aria-expanded", els.suggestions.hidden ? "false" : "true");
        if (latest()) suggestionsBusy(false);
      })
      .catch(function () {
        if (state.suggestCtl === ctl) hideSuggestions(); // optional: a failed list goes
        if (latest()) suggestionsBusy(false);
      });
  }

  function renderResults() {
    var body = state.response;
    renderFacets(body ? body.facets : null);
    els.results.replaceChildren();
    state.selected = -1;
    if (!body) {
      els.badge.hidden = true;
      drawRadar();
      return;
    }
    els.badge.textContent = body.strategy + " · " + Math.round(body.took_ms) + " ms";
    els.badge.title = "strategy " + body.strategy + ", answered in " + body.took_ms + " ms";
    els.badge.hidden = false;
    var loc = currentLocation();
    var where = !loc ? "" : delivering() ? " from stores delivering to " + loc.label
      : " within " + formatKm(radiusKm()) + " of " + loc.label;
    if (body.results.length === 0) {
      renderEmpty(loc, where);
      return;
    }
    body.results.forEach(function (hit, i) { els.results.appendChild(renderHit(hit, i)); });
    var n = body.results.length;
    var total = typeof body.total === "number" && body.total > n ? body.total : n;
    // a capped set counts its first PLINQY_FACET_DEPTH products: more may match, whatever is shown
    var capped = body.total_capped === true;
    var shown = (total > n ? n.toLocaleString() + " of " : "") + total.toLocaleString() + (capped ? "+" : "");
    var mixed = currencyNote();
    setStatus(takeLinkNote() + shown + (total === 1 && !capped ? " product" : " products") + " for “" +
      els.q.value.trim() + "”" + where + ". " + (mixed ? mixed + " " : "") +
      "Press Enter on a result to show its stores on the radar.");
    // a keyword set is counted whole (up to 2,000) but paged only to MAX_OFFSET: no button the API would refuse
    var fetched = body.fetched || n; // a page that came back empty ends the list, whatever `total` said
    if (total > n && !body.exhausted) {
      els.results.appendChild(fetched <= MAX_OFFSET ? moreButton(fetched) : pagedToTheEnd(fetched));
    }
    select(state.keepSelected || 0, false);
    state.keepSelected = 0;
  }

  /** The chosen category's name, "" for all (an empty result "within 5 km" hid that it searched one category). */
  function categoryName() {
    var opt = els.category.selectedOptions[0];
    return els.category.value && opt ? opt.dataset.name || "" : "";
  }

  function renderEmpty(loc, where) {
    var cat = categoryName(), scope = cat ? " in " + cat : "";
    var empty = el("li", "empty");
    empty.appendChild(el("p", "empty-title", "Nothing found" + scope + where + "."));
    var wider = delivering() ? "turn off “Delivers to me”" : "a wider radius"; // the radius is off meanwhile
    var hint = loc ? "Try other words, " + wider + ", or turn off “Only in stock”."
      : cat ? "Try other words." : "Try other words or another category.";
    if (cat) hint += " Or choose All categories: only " + cat + " was searched.";
    if (Object.keys(state.chosen).length > 0) hint += " Or clear the facet values chosen in the column.";
    if (els.sort.value !== "relevance" && els.mode.value !== "keyword") {  // the sort keeps the close matches only
      hint += " Sorted by " + els.sort.value + ", only products close to what you typed are listed: sort by " +
        "relevance to see the nearest matches.";
    }
    empty.appendChild(el("p", "hint", hint));
    els.results.appendChild(empty);
    setStatus(takeLinkNote() + "No products found for “" + els.q.value.trim() + "”" + scope + where + ".");
    drawRadar();
  }

  /** The next page of the same search, added below (the page had no way past its first 20). */
  function pagedToTheEnd(n) {
    return el("li", "more paged-to-the-end", "The first " + n.toLocaleString() + " are shown, as far as the list " +
      "goes: choose a category or a brand, or a smaller radius, to see the others.");
  }

  function moreButton(n) {
    var li = el("li", "more");
    var b = el("button", "more-button", "Show more");
    b.type = "button";
    b.addEventListener("click", function () {
      var params = new URLSearchParams(state.params);
      // a page answered once a new search is pending or answered belongs to the old one: dropped
      var paged = state.response, seq = state.seq;
      var current = function () { return state.response === paged && state.seq === seq; };
      params.set("offset", String(n));
      b.disabled = true;
      dropMore();
      var ctl = new AbortController();
      state.moreCtl = ctl;
      fetch("/v1/search?" + params.toString(), { signal: ctl.signal, headers: { Accept: "application/json" } })
        .then(readAnswer) // a proxy's HTML error page is an answer: "Can't reach the service" was said of it
        .then(function (r) {
          if (!current()) return;
          state.moreCtl = null;
          if (!r.res.ok || !r.body || !Array.isArray(r.body.results)) {
            failed(r.res, r.body, true);
            b.disabled = false;
            return;
          }
          clearError(); // a failed press's error goes with the page that came
          // the focus moves to the new rows only from the button (or where its removal left it), never from
          // a control the user went on to
          var fromHere = document.activeElement === b || document.activeElement === document.body;
          // a product that moved between the pages (a price changed under sort=price) came again: shown once
          var shown = state.response.results, seen = {};
          shown.forEach(function (hit) { seen[hit.product.id] = true; });
          state.response.results = shown.concat(r.body.results.filter(function (hit) { return !seen[hit.product.id]; }));
          state.response.fetched = n + r.body.results.length; // the next page's offset: rows read, not shown
          state.response.exhausted = r.body.results.length === 0;
          state.keepSelected = state.selected;
          renderResults();
          var first = els.results.querySelector('li.result[data-index="' + shown.length + '"]');
          if (first && fromHere) first.focus();
        })
        .catch(function () {
          if (!current()) return;
          state.moreCtl = null;
          b.disabled = false;
          showError("Can't reach the search service.", "Try again.");
        });
    });
    li.appendChild(b);
    return li;
  }

  function renderHit(hit, i) {
    var p = hit.product;
    var li = el("li", "result");
    li.tabIndex = 0;
    li.dataset.index = String(i);
    li.dataset.productId = p.id;
    li.setAttribute("aria-current", "false");
    var head = el("div", "result-head");
    head.appendChild(el("h3", "name", p.name));
    var score = el("span", "score");
    // said with its number as text: an aria-label on a plain span is prohibited (readers said the bare number)
    score.appendChild(el("span", "visually-hidden", "score "));
    score.appendChild(document.createTextNode(hit.score.toFixed(3)));
    score.title = "relevance score";
    head.appendChild(score);
    li.appendChild(head);
    li.appendChild(el("p", "brand", p.brand || "no brand"));
    if (hit.stores.length === 0) {
      li.appendChild(el("p", "no-stores", "No store near you lists it."));
    } else {
      var ul = el("ul", "stores");
      // sorted by price the API lists a hit's cheapest stores first: "Nearest" told a screen reader otherwise
      ul.setAttribute("aria-label", els.sort.value === "price" ? "Cheapest stores" : "Nearest stores");
      hit.stores.forEach(function (s, k) {
        var row = el("li", "store");
        row.dataset.storeId = s.id;
        if (s.distance_m !== null && s.distance_m !== undefined) row.dataset.distanceM = String(s.distance_m);
        var mark = el("span", "marker", String(k + 1));
        mark.setAttribute("aria-hidden", "true");
        row.appendChild(mark);
        row.appendChild(el("span", "store-name", s.name));
        row.appendChild(el("span", "distance", formatDistance(s.distance_m)));
        row.appendChild(el("span", "price", formatPrice(s.price, s.currency)));
        row.appendChild(el("span", "stock " + (s.quantity > 0 ? "in" : "out"), formatStock(s.quantity)));
        if (s.delivers) row.appendChild(el("span", "delivers", "delivers"));
        ul.appendChild(row);
      });
      li.appendChild(ul);
    }
    return li;
  }

  function select(i, announce) {
    var items = els.results.querySelectorAll("li.result");
    if (i < 0 || i >= items.length) return;
    state.selected = i;
    items.forEach(function (node, k) {
      node.classList.toggle("selected", k === i);
      node.setAttribute("aria-current", k === i ? "true" : "false");
    });
    if (announce) {
      named(els.status, state.response.results[i].product.name, ": its stores are on the radar.", "Selected ");
    }
    drawRadar();
  }

  els.results.addEventListener("click", function (ev) {
    var li = ev.target.closest("li.result");
    if (li) select(parseInt(li.dataset.index, 10), true);
  });
  els.results.addEventListener("keydown", function (ev) {
    var li = ev.target.closest("li.result");
    if (!li) return;
    var i = parseInt(li.dataset.index, 10);
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      select(i, true);
    } else if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      var next = els.results.querySelector('li.result[data-index="' + (i + (ev.key === "ArrowDown" ? 1 : -1)) + '"]');
      if (next) next.focus();
    }
  });

  // --- radar
  function storesKey(loc) { return loc.lat.toFixed(5) + "," + loc.lon.toFixed(5) + "," + els.radius.value; }

  /** Store coordinates around `loc` (the search API gives distances only), fetched once per place+radius. */
  function loadStores(loc) {
    var key = storesKey(loc);
    if (state.stores[key]) return;
    if (state.storesCtl) state.storesCtl.abort();
    var ctl = new AbortController();
    state.storesCtl = ctl;
    state.stores[key] = null; // pending
    var q = new URLSearchParams({ lat: String(loc.lat), lon: String(loc.lon),
      radius_m: String(Math.round(radiusKm() * 1000)), limit: "1000" });
    fetch("/v1/stores/nearby?" + q.toString(), { signal: ctl.signal })
      .then(function (res) { if (!res.ok) throw new Error(String(res.status)); return res.json(); })
      .then(function (body) {
        var byId = {};
        body.stores.forEach(function (s) { byId[s.id] = s.location; });
        state.stores[key] = byId;
        drawRadar();
      })
      .catch(function (err) {
        if (err && err.name === "AbortError") { delete state.stores[key]; return; }
        state.stores[key] = "failed"; // said under the radar; a new place or radius asks again
        drawRadar();
      });
  }

  function bearing(from, to) {
    var rad = Math.PI / 180;
    var f1 = from.lat * rad, f2 = to.lat * rad, dl = (to.lon - from.lon) * rad;
    var y = Math.sin(dl) * Math.cos(f2);
    var x = Math.cos(f1) * Math.sin(f2) - Math.sin(f1) * Math.cos(f2) * Math.cos(dl);
    return Math.atan2(y, x); // radians clockwise from north
  }

  function drawRadar() {
    var root = els.radar;
    Array.prototype.slice.call(root.childNodes).forEach(function (n) {
      if (n.nodeName !== "title" && n.nodeName !== "desc") root.removeChild(n);
    });
    var loc = currentLocation();
    var km = radiusKm();
    root.appendChild(svg("circle", { cx: 0, cy: 0, r: RADAR_R, class: "ring" }));
    root.appendChild(svg("circle", { cx: 0, cy: 0, r: RADAR_R / 2, class: "ring inner" }));
    root.appendChild(svg("line", { x1: -RADAR_R, y1: 0, x2: RADAR_R, y2: 0, class: "axis" }));
    root.appendChild(svg("line", { x1: 0, y1: -RADAR_R, x2: 0, y2: RADAR_R, class: "axis" }));
    root.appendChild(svg("text", { x: 0, y: -RADAR_R - 6, class: "north" }, "N"));
    root.appendChild(svg("text", { x: 4, y: -RADAR_R + 14, class: "ring-label" }, formatKm(km)));
    root.appendChild(svg("text", { x: 4, y: -RADAR_R / 2 + 14, class: "ring-label" }, formatKm(km / 2)));
    root.appendChild(svg("circle", { cx: 0, cy: 0, r: 5, class: "me" }));

    var hit = state.response && state.selected >= 0 ? state.response.results[state.selected] : null;
    if (!loc) {
      els.radarCaption.textContent = "Pick a place to see how far the stores are.";
      return;
    }
    if (!hit) {
      var centre = state.me && state.me.shared && els.location.value === "me" ? "The centre is " + loc.label
        : "You are at the centre (" + loc.label + ")";
      els.radarCaption.textContent = centre + "; the circle is " + formatKm(km) + ".";
      return;
    }
    var coords = state.stores[storesKey(loc)];
    if (coords === undefined) { loadStores(loc); }
    var placed = 0;
    hit.stores.forEach(function (s, k) {
      var at = coords && coords !== "failed" && coords[s.id];
      if (!at || s.distance_m === null) return;
      var b = bearing(loc, at);
      var r = Math.min(s.distance_m / (km * 1000), 1) * RADAR_R;
      var x = r * Math.sin(b), y = -r * Math.cos(b);
      var g = svg("g", { class: "store-dot", "data-store-id": s.id });
      g.appendChild(svg("title", {}, (k + 1) + ". \u2068" + s.name + "\u2069, " + formatDistance(s.distance_m)));
      g.appendChild(svg("circle", { cx: x.toFixed(2), cy: y.toFixed(2), r: 7 }));
      g.appendChild(svg("text", { x: x.toFixed(2), y: (y + 3.5).toFixed(2) }, String(k + 1)));
      root.appendChild(g);
      placed++;
    });
    var name = hit.product.name, caption = els.radarCaption;
    if (hit.stores.length === 0) named(caption, name, ": no store within the radius.");
    else if (coords === "failed") named(caption, name, ": couldn't load the stores' positions.");
    else if (coords === null || coords === undefined) named(caption, name, ": locating its stores…");
    else named(caption, name, ": " + placed + " of " + hit.stores.length +
      (hit.stores.length === 1 ? " store" : " stores") + " drawn around " + loc.label + "." + beyondCircle(hit, km));
  }

  /** Delivering stores past the circle: the search answer has distances only, and the positions come for the
   *  circle's stores alone, so they are not drawn (the caption counted them as if they were around you). */
  function beyondCircle(hit, km) {
    var n = hit.stores.filter(function (s) { return s.distance_m !== null && s.distance_m > km * 1000; }).length;
    if (n === 0) return "";
    return " " + n + (n === 1 ? " delivering store is" : " delivering stores are") + " beyond the " + formatKm(km) +
      " circle, not drawn.";
  }

  // --- geolocation
  /** The browser's position, or a link's (`shared`: the sender's, which this user never gave). */
  function useMyLocation(point) {
    state.me = point;
    if (!point.shared) rememberOwn(point);
    var opt = els.location.querySelector('option[value="me"]');
    if (!opt) {
      opt = el("option");
      opt.value = "me";
      els.location.insertBefore(opt, els.location.firstChild);
    }
    opt.textContent = point.shared ? "Shared location (from the link)" : "My location";
    els.location.value = "me";
  }

  els.locate.addEventListener("click", function () {
    if (!("geolocation" in navigator)) {
      showError("Your browser can't share its location.", "Pick a neighbourhood instead.");
      return;
    }
    setStatus("Asking your browser for your location…");
    navigator.geolocation.getCurrentPosition(function (pos) {
      useMyLocation({ lat: pos.coords.latitude, lon: pos.coords.longitude });
      syncPlaceControls();
      clearError();
      runSearch();
    }, function (err) {
      var why = err.code === 1 ? "permission was denied" : err.code === 3 ? "it took too long" : "it is unavailable";
      setStatus("");
      showError("Couldn't get your location (" + why + ").", "Pick a neighbourhood instead.");
    }, { enableHighAccuracy: false, timeout: 10000, maximumAge: 60000 });
  });

  // --- presets and categories
  /** The preset a link's `near` names: its index, -1 for "anywhere", null for an unknown name. */
  function presetIndex(near) {
    if (near === "anywhere") return -1;
    var found = null;
    state.presets.forEach(function (p, i) { if (p.name === near) found = i; });
    return found;
  }

  function loadPresets(near, at, badAt) {
    return fetch("/v1/presets").then(function (res) {
      if (!res.ok) throw new Error(String(res.status));
      return res.json();
    }).then(function (body) {
      state.presets = body.presets;
      els.city.textContent = body.city;
      els.location.replaceChildren();
      body.presets.forEach(function (p, i) {
        var opt = el("option", null, p.name);
        opt.value = "preset:" + i;
        els.location.appendChild(opt);
      });
      var any = el("option", null, "Anywhere (no distance limit)");
      any.value = "";
      els.location.appendChild(any);
      var wanted = near ? presetIndex(near) : 0;
      if (near && wanted === null) {  // it fell back to the first neighbourhood without a word
        state.linkNote += "“" + near + "” is not one of the places here: showing " + body.presets[0].name + ". ";
        wanted = 0;
      }
      els.location.value = wanted < 0 ? "" : "preset:" + wanted;
      if ((at || badAt) && near) {  // a place wins: said, as the page says what else of a link it leaves out
        state.linkNote += "The link names both a place and a position: searching " + (wanted < 0 ? "anywhere"
          : "near " + body.presets[wanted].name) + ", not at “" + (at ? at.lat + "," + at.lon : badAt) + "”. ";
      }
      if (badAt && !near) {
        state.linkNote += "The link's position “" + badAt + "” is not a latitude,longitude: showing " +
          body.presets[0].name + ". ";
      }
      if (at && !near) {
        useMyLocation(at);
        if (at.shared) state.linkNote += "Searching around the position the link shares, not yours (“Use my " +
          "location” for yours). ";
      }
    }).catch(function () {
      els.location.replaceChildren();
      var any = el("option", null, "Anywhere (places unavailable)");
      any.value = "";
      els.location.appendChild(any);
    });
  }

  function restoreCategory(wanted) {
    if (wanted && els.category.querySelector('option[value="' + CSS.escape(wanted) + '"]')) els.category.value = wanted;
    else if (wanted) state.linkNote += "The link's category " + wanted + " is not one of the catalogue's: all " +
      "categories. ";
  }

  function loadCategories(wanted) {
    return fetch("/v1/categories").then(function (res) {
      if (!res.ok) throw new Error(String(res.status));
      return res.json();
    }).then(function (body) {
      var add = function (nodes, depth) {
        nodes.forEach(function (c) {
          var opt = el("option", null, "\u00a0\u00a0\u00a0".repeat(depth) + (depth ? "└ " : "") + c.name);
          opt.value = String(c.id);
          opt.dataset.name = c.name;
          els.category.appendChild(opt);
          add(c.children || [], depth + 1);
        });
      };
      add(body.categories, 0);
      restoreCategory(wanted);
    }).catch(function () {
      var opt = el("option", null, "(categories unavailable)");
      opt.disabled = true;
      els.category.appendChild(opt);
    });
  }

  // --- wiring
  els.form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    dropSuggestions(); // Enter searches: the list under the box has done its job
    runSearch();
  });
  els.q.addEventListener("input", function () {
    state.chosen = {}; // a new query: the facet values chosen for the last one may not exist for it
    pointAt(-1); // the old list's option is not what Enter picks once the text changed
    scheduleSearch();
    clearTimeout(state.suggestTimer);
    state.suggestAsked++;
    suggestionsBusy(true);
    state.suggestTimer = setTimeout(loadSuggestions, 120);
  });
  els.q.addEventListener("keydown", function (ev) {
    if (els.suggestions.hidden) return;
    var i = pointedOption(), n = options().length;
    if (ev.key === "Escape") {
      ev.preventDefault(); // the first Escape closes the list only (a search box's own Escape cleared the query)
      hideSuggestions();
    } else if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault(); // ↑ from the first option goes back to the box's text; ↓ stops at the last
      pointAt(Math.min(i + (ev.key === "ArrowDown" ? 1 : -1), n - 1));
    } else if (ev.key === "Enter" && i >= 0) {
      ev.preventDefault(); // Enter alone picks an option (not a search for the text typed)
      options()[i].click();
    } else if (["Home", "End", "ArrowLeft", "ArrowRight"].indexOf(ev.key) >= 0) {
      pointAt(-1); // the caret moves in the box: the box is pointed at again
    }
  });
  // Clicking or tabbing away leaves the list behind no more (it stayed over the other controls).
  els.q.parentNode.addEventListener("focusout", function (ev) {
    if (ev.relatedTarget && els.q.parentNode.contains(ev.relatedTarget)) return;
    dropSuggestions(); // a list still to come must not open once the focus has left (it did)
  });
  els.sort.addEventListener("change", function () { runSearch(); });
  els.delivers.addEventListener("change", function () { syncPlaceControls(); runSearch(); });
  // Another place or radius: a store chosen in the store facet may be out of it, with no button left to undo it.
  els.radius.addEventListener("input", function () { delete state.chosen.store_id; showRadius(); scheduleSearch(); });
  els.location.addEventListener("change", function () {
    delete state.chosen.store_id;
    syncPlaceControls();
    runSearch();
  });
  [els.mode, els.category, els.inStock].forEach(function (input) {
    input.addEventListener("change", function () { runSearch(); });
  });

  window.addEventListener("popstate", restoreEntry);

  var restored = restoreFromUrl();
  showRadius();
  drawRadar();
  var loaded = [loadPresets(restored.near, restored.at, restored.badAt), loadCategories(restored.category)];
  Promise.all(loaded).then(function () {
    // on load, a distance sort comes from the link: it needs a place
    if (syncPlaceControls()) state.linkNote += "The link's sort by distance needs a place: relevance used. ";
    document.body.dataset.ready = "true";
    if (els.q.value.trim() !== "") runSearch("replace");
    else drawRadar();
  });
})();
