"""Answers found wanting by probing the running service as a front end and an integrator would: each names what was
wrong (a parameter, a key) where it was a 404 without a name, a 500 or a traceback, or an answer for a product that
is gone."""

from __future__ import annotations

import json
import time
import unicodedata
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector

from search_service.settings import Settings
from tests.ingest_helpers import (
    bearer,
    drain_imports,
    ingest_settings,
    new_store,
    serve,
    signed,
    store_key,
    webhook_connection,
)
from tests.test_api import READY_TIMEOUT_S
from tests.test_ingest_cli import PROJECT_ROOT, cli


def _error(answer: httpx.Response) -> tuple[int, str | None, str]:
    body = answer.json()["error"]
    return answer.status_code, body["parameter"], body["message"]


def test_a_path_id_that_is_no_uuid_is_a_400_naming_it(base: str) -> None:
    store = uuid.uuid4()
    for path, parameter in [
        ("/v1/stores/notauuid", "store_id"),
        ("/v1/stores/notauuid/listings/a1", "store_id"),
        (f"/v1/stores/{store}/webhooks/nope/test", "webhook_id"),
        ("/v1/imports/123", "batch_id"),
        ("/v1/ingest/xyz", "connection_id"),
    ]:
        status, named, message = _error(
            httpx.request("POST" if "webhooks" in path or "ingest" in path else "GET", f"{base}{path}")
        )
        assert (status, named) == (400, parameter), path
        assert message.startswith("must be a UUID")
    assert _error(httpx.get(f"{base}/v1/stores/{store}"))[:2] == (404, "store_id")  # a UUID, no such store
    assert httpx.get(f"{base}/v1/nothing-here").status_code == 404


def test_every_uuid_parameter_takes_the_one_form_the_api_writes(base: str, db_url: str) -> None:
    """8-4-4-4-12 hex digits, either case, in every path and query; 32 bare digits, braces and `urn:uuid:` are a
    400 naming the parameter, with or without a key (stores took them while products refused them)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        auth = bearer(store_key(conn, store, "listings:write", "webhooks:write"))
    other = uuid.uuid4()
    for form in (store.hex, store.hex.upper(), f"{{{store}}}", f"urn:uuid:{store}", f"{store}%0A"):
        for method, path, parameter in [
            ("GET", f"/v1/stores/{form}", "store_id"),
            ("GET", f"/v1/stores/{form}/listings", "store_id"),
            ("GET", f"/v1/stores/{form}/listings/a1", "store_id"),
            ("GET", f"/v1/stores/{form}/imports", "store_id"),
            ("GET", f"/v1/stores/{form}/webhooks", "store_id"),
            ("POST", f"/v1/stores/{store}/webhooks/{form.replace(store.hex, other.hex)}/test", "webhook_id"),
            ("GET", f"/v1/imports/{form}", "batch_id"),
            ("GET", f"/v1/imports/{form}/errors", "batch_id"),
            ("POST", f"/v1/ingest/{form}", "connection_id"),
            ("GET", f"/v1/products/{form}", "product_id"),
            ("GET", f"/v1/products/{form}/similar", "product_id"),
            ("GET", f"/v1/search?q=milk&store_id={form}", "store_id"),
        ]:
            for headers in (auth, {}):
                answer = httpx.request(method, f"{base}{path}", headers=headers)
                assert answer.status_code == 400 and answer.json()["error"]["parameter"] == parameter, (path, answer)
    assert httpx.get(f"{base}/v1/stores/{str(store).upper()}").json()["id"] == str(store)
    listings = httpx.get(f"{base}/v1/stores/{str(store).upper()}/listings", headers=auth)
    assert listings.status_code == 200, listings.text
    assert _error(httpx.get(f"{base}/v1/products/{str(other).upper()}"))[:2] == (404, "product_id")


def test_similar_to_an_inactive_product_is_a_404_as_the_product_is(base: str, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        register_vector(conn)
        store = new_store(conn)
        ids = [uuid.uuid4() for _ in range(3)]
        for pid in ids:
            vector = np.random.default_rng(pid.int % 1000).normal(size=384).astype(np.float32)
            conn.execute(
                "INSERT INTO product_master (id, name, ai_vector) VALUES (%s, 'Lamp', %s)",
                (pid, vector / np.linalg.norm(vector)),
            )
            conn.execute(
                "INSERT INTO store_product (store_id, product_master_id, price, currency, quantity) "
                "VALUES (%s, %s, 2, 'EUR', 1)",
                (store, pid),
            )
        assert httpx.get(f"{base}/v1/products/{ids[0]}/similar").status_code == 200
        conn.execute("UPDATE product_master SET is_active = false WHERE id = %s", (ids[0],))
    for path in (f"/v1/products/{ids[0]}", f"/v1/products/{ids[0]}/similar"):
        assert _error(httpx.get(f"{base}{path}"))[:2] == (404, "product_id"), path


def test_query_parameters_say_their_own_range(base: str) -> None:
    status, named, message = _error(httpx.get(f"{base}/v1/suggest", params={"q": "milk", "limit": 11}))
    assert (status, named) == (400, "limit") and message == "must be an integer between 1 and 10"
    for invisible in ("\u200b", "\ufeff", " \u200b\u2060 "):
        assert _error(httpx.get(f"{base}/v1/suggest", params={"q": invisible}))[:2] == (400, "q"), repr(invisible)
        search = httpx.get(f"{base}/v1/search", params={"q": invisible, "mode": "keyword"})
        assert _error(search)[:2] == (400, "q")


def test_the_price_filters_reach_every_price_a_listing_may_hold(base: str, db_url: str) -> None:
    """A listing may be priced up to 9999999999.99 (numeric(12,2)), the filters took at most 1e9 (5e9 JPY is a TV):
    no bound reached it. Their 400 said the range, then msgspec's own `(Expected `float` <= 1000000000.0)`."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        key = store_key(conn, store := new_store(conn, currency="JPY"), "listings:write")
    body = {"name": "Zorblax Big TV", "price": "5000000000", "quantity": 1}
    assert httpx.put(f"{base}/v1/stores/{store}/listings/BIG", json=body, headers=bearer(key)).status_code == 200
    near = {"q": "zorblax big tv", "mode": "keyword", "lat": 52.52, "lon": 13.405, "radius_m": 1000}
    for bounds in ({"min_price": 2e9}, {"min_price": 5e9, "max_price": 5e9}, {"max_price": 9999999999.99}):
        found = httpx.get(f"{base}/v1/search", params={**near, **bounds})
        assert "Zorblax Big TV" in [r["product"]["name"] for r in found.json()["results"]], (bounds, found.text)
    for name in ("min_price", "max_price"):
        answer = httpx.get(f"{base}/v1/search", params={**near, name: 1e10})
        assert _error(answer) == (400, name, "must be a number between 0 and 9999999999.99"), answer.text


def test_a_store_reads_its_pages_with_bad_cursors_refused(base: str, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        key = store_key(conn, store, "listings:write")
    imports = f"{base}/v1/stores/{store}/imports"
    for huge in ("9223372036854775808", "99999999999999999999"):
        assert _error(httpx.get(imports, params={"before": huge}, headers=bearer(key)))[:2] == (400, "before")
    assert httpx.get(imports, params={"before": str(2**63 - 1)}, headers=bearer(key)).status_code == 200
    listings = httpx.get(f"{base}/v1/stores/{store}/listings", params={"after": "a\x00"}, headers=bearer(key))
    assert _error(listings)[:2] == (400, "after")


def test_an_out_of_range_before_says_its_range_as_a_wrong_type_one_does(base: str, db_url: str) -> None:
    """`before=0` (or `-1`, or past 2**63 - 1) answered msgspec's bare "Expected `int` >= 1": no parameter rule named
    it, where `before=abc` and the route's `page_size=0` say the range first."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        key = store_key(conn, store, "listings:write")
    imports, rule = f"{base}/v1/stores/{store}/imports", f"must be an integer between 1 and {2**63 - 1}"
    for sent, says in [("0", rule), ("-1", rule), ("99999999999999999999", rule), ("abc", f"{rule} (got 'abc')")]:
        answer = httpx.get(imports, params={"before": sent}, headers=bearer(key))
        assert _error(answer) == (400, "before", says), sent  # a range error: the rule alone (as every range's)
    page_size = httpx.get(imports, params={"page_size": "0"}, headers=bearer(key))
    assert _error(page_size) == (400, "page_size", "must be an integer between 1 and 1000")


def test_a_bodys_range_error_reads_as_the_batchs_and_a_huge_number_as_its_rule(base: str, db_url: str) -> None:
    """A PUT's or PATCH's quantity or version past its range said msgspec's "Expected `int` >= 0", where a batch item
    says "quantity must not be negative" for the same rule; a query number past a float's (`1e400`) added msgspec's
    "(Number out of range)" to the rule that says the range. One wording a rule now, whichever path."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        key = store_key(conn, store := new_store(conn), "listings:write")
    listings = f"{base}/v1/stores/{store}/listings"
    for field, sent, says in [("quantity", -1, "quantity must not be negative"),
                              ("quantity", 99999999999, "quantity must be at most 2147483647"),
                              ("version", -1, "version must be a whole number >= 0"),
                              ("version", 2**63, "version is too large")]:  # fmt: skip
        body = {"name": "Zorblax range", "price": 1, "quantity": 1, field: sent}
        put = httpx.put(f"{listings}/RX", json=body, headers=bearer(key))
        assert _error(put) == (400, field, says), (field, sent)
        patch = httpx.patch(f"{listings}/RX", json={field: sent, "quantity": body["quantity"]}, headers=bearer(key))
        assert _error(patch) == (400, field, says), (field, sent)
        batch = httpx.post(f"{listings}/batch", json={"items": [{"sku": "RX", **body}]}, headers=bearer(key))
        assert batch.json()["results"][0]["error"] == says, batch.text
    near = {"q": "milk", "lat": 52.52, "lon": 13.405}
    for name, rule in [("max_price", "must be a number between 0 and 9999999999.99"),
                       ("lat", "must be a number between -90 and 90")]:  # fmt: skip
        answer = httpx.get(f"{base}/v1/search", params={**near, name: "1e400"})
        assert _error(answer) == (400, name, rule), answer.text


def test_a_secret_stored_under_another_key_is_a_503_not_a_500(
    base: str, db_url: str, tmp_path: Path, settings: Settings
) -> None:
    other = ingest_settings(db_url, tmp_path)  # another key file: the operator lost or replaced the key
    assert other.secret_key_file != settings.secret_key_file
    with psycopg.connect(db_url, autocommit=True) as conn:
        connection, secret = webhook_connection(conn, other, new_store(conn))
    body = json.dumps({"type": "stock.set", "data": {"sku": "a1", "quantity": 2}}).encode()
    answer = httpx.post(f"{base}/v1/ingest/{connection}", content=body, headers=signed(secret, body))
    status, _, message = _error(answer)
    assert status == 503 and answer.headers["retry-after"]
    assert "its PLINQY_SECRET_KEY_FILE is not the key the secret was stored with" in message  # the one it uses
    assert secret not in answer.text


def test_a_malformed_secret_key_is_named_by_readiness_and_the_answers(
    base: str, db_url: str, settings: Settings
) -> None:
    """A key file in standard base64 (`+`, `/`): readyz said ready, a new subscription answered 503 "not the key the
    secret was stored with; retry later" (no stored secret involved; retrying never helps), each worker job a
    traceback."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        key = store_key(conn, store := new_store(conn), "webhooks:write")
    settings.secret_box()  # the key file, made on first use
    good = settings.secret_key_file.read_bytes()
    settings.secret_key_file.write_bytes(b"Z9KnAkIwVZaXu/a8Wct2wOqZm++aJipDUwpuBJ4BieM=")
    try:
        ready = httpx.get(f"{base}/readyz")
        body = {"url": "https://1.1.1.1/hook", "events": ["stock.out"]}  # a public literal: never sent anything
        created = httpx.post(f"{base}/v1/stores/{store}/webhooks", json=body, headers=bearer(key))
        worker = cli(db_url, "worker", "--drain", "--only", "sync,events",
                     PLINQY_SECRET_KEY_FILE=str(settings.secret_key_file))  # fmt: skip
    finally:
        settings.secret_key_file.write_bytes(good)
    assert ready.status_code == 503 and ready.json()["checks"]["secret_key"] == "unusable"
    assert any("is not a Fernet key" in reason for reason in ready.json()["reasons"])
    status, _, message = _error(created)
    assert status == 503 and "secret key is not usable" in message and "stored with" not in message
    assert worker.returncode == 1 and "Traceback" not in worker.stderr, worker.stderr
    # refused before the jobs fork, in one line (each job failed at its start and was restarted for ever)
    assert worker.stderr.count("error: ") == 1 and "is not a Fernet key" in worker.stderr, worker.stderr
    again = httpx.get(f"{base}/readyz")  # read again: fixed without a restart (`wrong` would not make it unready)
    assert again.status_code == 200 and again.json()["checks"]["secret_key"] != "unusable"


def _readiness_once_asked(base: str) -> httpx.Response:
    """/readyz once the model is loaded and the pool has tried the database (it says `unreachable` until then)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        answer = httpx.get(f"{base}/readyz", timeout=30)
        checks = answer.json().get("checks", {})
        if answer.status_code != 503 or (checks["model"] == "ok" and checks["database"] != "unreachable"):
            return answer
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.2)


def test_a_role_without_rights_is_a_503_that_says_so_not_a_500(
    fresh_db_url: str, rightless_url: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A DATABASE_URL whose role connects but may read nothing (a read-only or unprivileged role): /readyz and every
    route answered 500 "internal error", a traceback logged for each request; a load balancer saw no reason."""
    role = urlsplit(rightless_url).username
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        store = new_store(conn)
        admin = bearer(store_key(conn, None))
    with serve(ingest_settings(rightless_url, tmp_path), None, until_ready=False) as base:
        ready = _readiness_once_asked(base)
        search = httpx.get(f"{base}/v1/search", params={"q": "milk", "lat": 52.52, "lon": 13.405}, timeout=30)
        patched = httpx.patch(f"{base}/v1/stores/{store}", json={"city": "Berlin"}, headers=admin, timeout=30)
        with psycopg.connect(fresh_db_url, autocommit=True) as conn:  # the revision readable, the secrets not
            conn.execute(f"GRANT SELECT ON alembic_version TO {role}")
        partly = httpx.get(f"{base}/readyz", timeout=30)
    body = ready.json()
    assert ready.status_code == 503 and ready.headers["retry-after"], ready.text
    assert body["checks"]["database"] == "forbidden" and "migrations" not in body["checks"], body
    assert body["reasons"][0] == (
        f"the database role '{role}' lacks rights (permission denied for table alembic_version): grant it access to "
        "the tables, or set DATABASE_URL to the role that ran `plinqy-search migrate`"
    ), body
    for answer in (search, patched):
        status, _, message = _error(answer)
        assert status == 503 and answer.headers["retry-after"], answer.text
        assert message.startswith("the database role this server uses lacks rights"), message
    assert partly.status_code == 503 and partly.json()["checks"]["migrations"] == "ok", partly.text
    assert any(f"'{role}' lacks rights (permission denied" in reason for reason in partly.json()["reasons"])
    logged = capfd.readouterr().err
    assert "Traceback" not in logged and "unhandled error" not in logged, logged[-3000:]
    said = [line.split(" on ")[1].split(" request_id=")[0] for line in logged.splitlines() if "lacks rights on" in line]
    assert said == ["GET /v1/search", f"PATCH /v1/stores/{store}"], logged[-3000:]


def test_the_command_line_says_in_one_line_what_to_do_when_it_cannot_start(db_url: str) -> None:
    unreachable = cli("postgresql://postgres@127.0.0.1:1/x", "keys", "list")
    missing = cli(db_url.rsplit("/", 1)[0] + "/no_such_database", "webhooks", "list", "--store", str(uuid.uuid4()))
    bad_key = cli(db_url, "connect", "webhook", "--store", str(uuid.uuid4()), PLINQY_SECRET_KEY="notakey")
    worker = cli(db_url.rsplit("/", 1)[0] + "/no_such_database", "worker", "--drain")  # a traceback from each job
    for out in (unreachable, missing, bad_key, worker):
        assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1 and out.stderr.startswith("error: ")
    assert "cannot reach the database" in unreachable.stderr and "check DATABASE_URL" in unreachable.stderr
    assert "db up" not in unreachable.stderr  # DATABASE_URL set: `db up` starts only the embedded cluster it bypasses
    assert 'database "no_such_database" does not exist' in missing.stderr
    assert "not a Fernet key" in bad_key.stderr and "PLINQY_SECRET_KEY_FILE" in bad_key.stderr


def test_every_command_says_in_one_line_that_the_role_lacks_rights(fresh_db_url: str, rightless_url: str) -> None:
    """A DATABASE_URL whose role connects but may read nothing: each command printed a traceback ending in
    `permission denied for table …`, while `db status` said the database is reachable."""
    role = urlsplit(rightless_url).username
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        store = str(new_store(conn))
    commands = [
        ("tasks", "stats"), ("keys", "list"), ("migrate",), ("imports", "list"), ("worker", "--drain"),
        ("import", "csv", str(PROJECT_ROOT / "examples" / "products.csv"), "--store", store),
        ("reembed", "--missing"), ("webhooks", "list", "--store", store),
    ]  # fmt: skip
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda command: cli(rightless_url, *command), commands))
    for command, out in zip(commands, outs, strict=True):
        assert out.returncode == 1 and "Traceback" not in out.stderr, (command, out.stderr)
        [line] = out.stderr.strip().splitlines()
        assert line.startswith(f"error: the database role '{role}' lacks rights (permission denied for "), line
        assert line.endswith("or set DATABASE_URL to the role that ran `plinqy-search migrate`"), line


def _read_only(fresh_db_url: str, rightless_url: str) -> str:
    """`rightless_url`'s role given SELECT on every table (GRANT SELECT only: the common read-only role); its name."""
    role = str(urlsplit(rightless_url).username)
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    return role


def test_a_read_only_role_gets_one_line_from_the_worker_not_a_traceback_per_job(
    fresh_db_url: str, rightless_url: str
) -> None:
    """A role that reads but may not write passed the checks before the jobs start: each job (a child process)
    died with a traceback multiprocessing printed, 3 a drain and a dozen in 15 s of `worker`, naming no role. The
    worker now asks for the rights its jobs need before it starts them: one line naming them, exit 1."""
    role = _read_only(fresh_db_url, rightless_url)
    drained = cli(rightless_url, "worker", "--drain")
    running = cli(rightless_url, "worker", "--only", "events")
    for out in (drained, running):
        assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-3000:]
        [line] = out.stderr.strip().splitlines()
        assert line.startswith(f"error: the database role '{role}' may not write what the worker's jobs "), line
        assert line.endswith("or set DATABASE_URL to the role that ran `plinqy-search migrate`"), line
    assert "jobs (sync, import, embed, events) write (it lacks ai_task: INSERT, UPDATE; " in drained.stderr
    assert "jobs (events) write (it lacks store_webhook: UPDATE; webhook_delivery: UPDATE): " in running.stderr


def test_a_read_only_role_is_not_ready_naming_the_writes_it_may_not_make(
    fresh_db_url: str, rightless_url: str, tmp_path: Path
) -> None:
    """GRANT SELECT only: every keyed request (key authentication writes `api_key`) and every write was a 503 saying
    "see /readyz", and /readyz said ready, `database: ok`; the reason was in the server's log alone."""
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        store = new_store(conn)
        admin = bearer(store_key(conn, None))
    role = _read_only(fresh_db_url, rightless_url)
    with serve(ingest_settings(rightless_url, tmp_path), None, until_ready=False) as base:
        ready = _readiness_once_asked(base)
        patched = httpx.patch(f"{base}/v1/stores/{store}", json={"city": "Berlin"}, headers=admin, timeout=30)
        _may_write(fresh_db_url, role)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while (granted := httpx.get(f"{base}/readyz", timeout=30)).status_code != 200:
            assert time.monotonic() < deadline, granted.text
            time.sleep(0.2)
        again = httpx.patch(f"{base}/v1/stores/{store}", json={"city": "Berlin"}, headers=admin, timeout=30)
    body = ready.json()
    assert ready.status_code == 503 and body["checks"]["database"] == "forbidden", ready.text
    [reason] = [r for r in body["reasons"] if "may not write" in r]
    assert reason.startswith(f"the database role '{role}' may not write what the API writes (it lacks ai_task: "
                             "INSERT, UPDATE; api_key: UPDATE; api_key_rate: INSERT, UPDATE; "), reason  # fmt: skip
    assert "store: INSERT, UPDATE;" in reason and "import_batch: DELETE, INSERT, UPDATE;" in reason, reason
    assert reason.endswith("or set DATABASE_URL to the role that ran `plinqy-search migrate`"), reason
    assert patched.status_code == 503 and "(see /readyz)" in _error(patched)[2], patched.text
    assert granted.json()["checks"]["database"] == "ok" and again.status_code == 200, (granted.text, again.text)


def _may_write(fresh_db_url: str, role: str, *also: str) -> None:
    """`role` may write every table and draw from every sequence (a trigger's nextval), then `also` (SQL) is run."""
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        conn.execute(f"GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
        conn.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")
        for statement in also:
            conn.execute(statement)


def test_a_role_that_may_not_write_what_a_trigger_writes_is_not_ready_and_the_worker_does_not_start(
    fresh_db_url: str, rightless_url: str, tmp_path: Path
) -> None:
    """A role with every right on the tables the API writes but INSERT on inventory_event, which store_product's
    trigger writes: /readyz said ready and the first listing write failed (a 503 `rights`); `worker` started its
    jobs, and each failed at its first such write and was restarted for ever."""
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        key = store_key(conn, store := new_store(conn), "listings:write")
    role = _read_only(fresh_db_url, rightless_url)
    _may_write(fresh_db_url, role, f"REVOKE INSERT ON inventory_event FROM {role}")
    drained = cli(rightless_url, "worker", "--drain", "--only", "import,events")
    with serve(ingest_settings(rightless_url, tmp_path), None, until_ready=False) as base:
        ready = _readiness_once_asked(base)
        _may_write(fresh_db_url, role, f"GRANT INSERT ON inventory_event TO {role}")
        deadline = time.monotonic() + READY_TIMEOUT_S
        while (granted := httpx.get(f"{base}/readyz", timeout=30)).status_code != 200:
            assert time.monotonic() < deadline, granted.text
            time.sleep(0.2)
        body = {"name": "Trigger Test Milk", "price": 1.5, "quantity": 4}
        put = httpx.put(f"{base}/v1/stores/{store}/listings/TRG-1", json=body, headers=bearer(key), timeout=30)
    assert ready.status_code == 503 and ready.json()["checks"]["database"] == "forbidden", ready.text
    lacks = "(it lacks inventory_event: INSERT): grant it those rights, or set DATABASE_URL to the role that ran "
    [reason] = [r for r in ready.json()["reasons"] if "may not write" in r]
    assert reason.startswith(f"the database role '{role}' may not write what the API writes {lacks}"), reason
    assert drained.returncode == 1 and drained.stderr.strip() == (
        f"error: the database role '{role}' may not write what the worker's jobs (import, events) write {lacks}"
        "`plinqy-search migrate`"
    ), drained.stderr[-3000:]
    assert put.status_code == 200, put.text  # granted: what the check asks for is all the write needs


def test_a_stores_optional_fields_clear_with_an_empty_string_and_are_checked(base: str, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        admin = store_key(conn, None)
    body = {"name": "Corner", "lat": 52.5, "lon": 13.4, "phone": "+49 30 1234", "website": "https://corner.example"}
    store = httpx.post(f"{base}/v1/stores", json=body, headers=bearer(admin)).json()
    url = f"{base}/v1/stores/{store['id']}"
    kept = httpx.patch(url, json={"phone": None, "city": "Berlin"}, headers=bearer(admin)).json()
    assert (kept["phone"], kept["city"]) == ("+49 30 1234", "Berlin")  # null keeps
    cleared = httpx.patch(url, json={"phone": "", "website": "", "country_code": ""}, headers=bearer(admin)).json()
    assert (cleared["phone"], cleared["website"], cleared["country_code"], cleared["city"]) == (
        None,
        None,
        None,
        "Berlin",
    )
    for field, value, says in [
        ("website", "javascript:alert(1)", "must be an http(s) address"),
        ("website", "https://user:pw@corner.example", "must be an http(s) address"),
        ("phone", "1" * 65, "at most 64 characters"),
        ("name", "n" * 201, "at most 200 characters"),
    ]:
        status, named, message = _error(httpx.patch(url, json={field: value}, headers=bearer(admin)))
        assert (status, named) == (400, field) and says in message, (field, message)
        refused = httpx.post(f"{base}/v1/stores", json={**body, field: value}, headers=bearer(admin))
        assert _error(refused)[:2] == (400, field)


def test_a_delivery_to_a_connection_that_takes_none_is_answered_as_an_unknown_id(base: str, db_url: str) -> None:
    """A polled connection answered a delivery with a 404 of its own ("this connection is polled and takes no
    webhooks"), and an Erply, X-Series or Shopify one connected without `--secret` (polled, no webhooks) a 401 "this
    connection has no signing secret": an unauthenticated caller learned that the connection exists. Each is
    answered as an unknown id now, the same status and body; so is a disabled one."""
    from tests.connector_helpers import make_connection

    sources = [
        ("lightspeed-r", {"account": "1", "token": "t"}),
        ("erply", {"client_code": "123456"}),
        ("lightspeed-x", {"domain_prefix": "s"}),
        ("shopify", {"shop": "gifts.myshopify.com"}),
    ]
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        takes_none = [
            make_connection(conn, store, source, "1", "https://api.example", creds) for source, creds in sources
        ]
        disabled = make_connection(conn, store, "shopify", "1", "https://api.example", {"shop": "x.myshopify.com"}, "s")
        conn.execute("UPDATE ingest_connection SET enabled = false WHERE id = %s", (disabled,))

    def answer(connection_id: uuid.UUID) -> tuple[int, object]:
        sent = httpx.post(
            f"{base}/v1/ingest/{connection_id}", content=b"{}", headers={"content-type": "application/json"}
        )
        return sent.status_code, sent.json()

    unknown = answer(uuid.uuid4())
    assert unknown == (404, {"error": {"parameter": "connection_id", "message": "no enabled connection with this id"}})
    for connection_id in [*takes_none, disabled]:
        assert answer(connection_id) == unknown, connection_id


def test_text_answers_name_their_charset_once(base: str, db_url: str) -> None:
    """litestar adds the charset to a text type itself: ours was doubled (a strict Prometheus scraper refuses it)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        key = store_key(conn, store, "listings:write")
    upload = httpx.post(
        f"{base}/v1/stores/{store}/imports",
        content=b"sku,price,quantity\nx,1,1\n",
        headers={**bearer(key), "content-type": "text/csv"},
    )
    drain_imports(db_url)  # a 409 until then
    errors = httpx.get(f"{base}{upload.json()['errors_url']}", headers=bearer(key))
    for answer, media in [
        (httpx.get(f"{base}/"), "text/html"),
        (httpx.get(f"{base}/metrics"), "text/plain; version=0.0.4"),
        (errors, "text/csv"),
    ]:
        assert answer.status_code == 200 and answer.headers["content-type"] == f"{media}; charset=utf-8"


def test_facets_asked_of_an_empty_scope_answer_empty_lists(base: str) -> None:
    """No store in the radius (or an unknown category): the facets asked for, empty, as for a query matching
    nothing (it answered `facets: {}`)."""
    params = {"q": "milk", "mode": "keyword", "lat": 10, "lon": 10, "facets": "brand,store"}
    answer = httpx.get(f"{base}/v1/search", params=params)
    assert answer.status_code == 200 and answer.json()["facets"] == {"brand": [], "store": []}, answer.text


def test_stalled_uploads_hold_no_connection_and_are_aborted(db_url: str, tmp_path: Path) -> None:
    """An upload held a pool connection while its body arrived: ten stalled ones (the pool's ten) made every route,
    search included, answer 503 for as long as their clients liked. Now no connection waits for a body, and a body
    that stops arriving is given up (408) and its batch aborted."""
    import dataclasses
    import socket

    base_settings = ingest_settings(db_url, tmp_path, upload_idle_s=1.5)
    settings = dataclasses.replace(base_settings, pool_min_size=1, pool_max_size=2)
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        key = store_key(conn, store, "listings:write")
    with serve(settings, None) as url:
        port = int(url.rsplit(":", 1)[1])
        stalled = []
        for _ in range(4):  # twice the pool
            sock = socket.create_connection(("127.0.0.1", port))
            head = (f"POST /v1/stores/{store}/imports HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                    "Content-Type: text/csv\r\nContent-Length: 100000\r\n\r\nsku,name,price,quantity\r\n")  # fmt: skip
            sock.sendall(head.encode())
            stalled.append(sock)
        time.sleep(0.5)
        assert httpx.get(f"{url}/readyz").status_code == 200  # the pool is free
        assert httpx.get(f"{url}/v1/categories").status_code == 200
        answers = []
        for sock in stalled:
            sock.settimeout(10)
            answers.append(sock.recv(4096).decode(errors="replace"))
            sock.close()
    assert all(a.startswith("HTTP/1.1 408") and "the upload stalled" in a for a in answers), answers
    with psycopg.connect(db_url) as conn:
        aborted = conn.execute("SELECT status, error FROM import_batch WHERE store_id = %s", (store,)).fetchall()
    assert len(aborted) == 4 and all(s == "aborted" and e.startswith("the upload stalled") for s, e in aborted)


def test_a_json_write_whose_body_stalls_is_a_408_and_closed(db_url: str, tmp_path: Path) -> None:
    """Only uploads and deliveries had an idle limit: a listing write that sent `{"name":` of its announced 1,000
    bytes, then nothing, was neither answered nor closed after 120 s. Every body now has the upload's limit."""
    import socket

    settings = ingest_settings(db_url, tmp_path, upload_idle_s=1.0)
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        key = store_key(conn, store, "listings:write")
    with serve(settings, None) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(
                f"PUT /v1/stores/{store}/listings/STALL-1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"name":'.encode()
            )
            sock.settimeout(10)
            started, answer = time.monotonic(), b""
            while chunk := sock.recv(4096):  # until the server closes the connection
                answer += chunk
            waited = time.monotonic() - started
    head, _, body = answer.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 408") and "connection: close" in head.lower(), answer
    assert json.loads(body)["error"]["message"] == "the request body stalled: no byte for 1 s; send it again"
    assert 0.9 < waited < 5, waited


def test_a_multipart_body_of_many_parts_is_refused_before_it_is_parsed(base: str, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        key = store_key(conn, store, "listings:write")
    body = b"--b\r\n\r\n" * 5000 + b'--b\r\nContent-Disposition: form-data; name="file"\r\n\r\nsku\r\n--b--\r\n'
    headers = {**bearer(key), "content-type": "multipart/form-data; boundary=b"}
    answer = httpx.post(f"{base}/v1/stores/{store}/imports", content=body, headers=headers)
    status, named, message = _error(answer)
    assert (status, named) == (400, "file") and "more than 100 parts" in message


def test_a_signed_sender_cannot_set_the_pipelines_own_keys_nor_fail_with_a_500(
    base: str, db_url: str, settings: Settings
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        key = store_key(conn, store, "listings:write")
        connection, secret = webhook_connection(conn, settings, store)
    url = f"{base}/v1/ingest/{connection}"
    data = {"sku": "w1", "name": "Kettle", "price": 9, "quantity": 1, "_error": "chosen by the sender", "_raw": 5}
    body = json.dumps({"type": "listing.upsert", "data": data}).encode()
    assert httpx.post(url, content=body, headers=signed(secret, body)).status_code == 202
    drain_imports(db_url)
    listed = httpx.get(f"{base}/v1/stores/{store}/listings/w1", headers=bearer(key))
    assert listed.status_code == 404, listed.text  # a field no row takes rejects its row (as the listing API's 400)
    with psycopg.connect(db_url) as conn:
        reason = conn.execute(
            "SELECT r.error FROM imported_product_raw r JOIN import_batch b ON b.id = r.import_batch_id "
            "WHERE b.store_id = %s",
            (store,),
        ).fetchone()
    assert reason is not None and reason[0].startswith('unknown field "_error": '), reason  # not the sender's reason
    long_id = signed(secret, body, msg_id="m" * 9000)  # past the dedup index's key: a 500
    assert _error(httpx.post(url, content=body, headers=long_id))[:2] == (400, "webhook-id")
    deep = b'{"type": "listing.upsert", "data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert _error(httpx.post(url, content=deep, headers=signed(secret, deep)))[0] == 400  # a RecursionError: 500


def test_stores_nearby_answers_up_to_a_thousand_and_says_so(base: str, db_url: str) -> None:
    """The page's radar asked for 100 stores, the API's limit, and left the rest of a wide radius undrawn."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        for i in range(120):
            new_store(conn, lat=48.0 + i * 1e-4, lon=2.0)
    params = {"lat": 48.0, "lon": 2.0, "radius_m": 5000, "limit": 1000}
    stores = httpx.get(f"{base}/v1/stores/nearby", params=params)
    assert stores.status_code == 200 and len(stores.json()["stores"]) == 120
    status, named, message = _error(httpx.get(f"{base}/v1/stores/nearby", params={**params, "limit": 1001}))
    assert (status, named) == (400, "limit") and message == "must be an integer between 1 and 1000"


def test_decomposed_accents_are_read_as_composed(base: str, db_url: str) -> None:
    """Text pasted from macOS or a PDF is decomposed (u + U+0308): a brand filter, a keyword search and a stored
    name compared it code point by code point with the composed ü, and missed."""
    decomposed = unicodedata.normalize("NFD", "Haferglück")
    with psycopg.connect(db_url, autocommit=True) as conn:
        key = store_key(conn, store := new_store(conn), "listings:write")
    body = {"name": f"{decomposed} Nachtkerze", "brand": decomposed, "price": 2, "quantity": 3}
    put = httpx.put(f"{base}/v1/stores/{store}/listings/NFD-1", json=body, headers=bearer(key))
    assert put.status_code == 200, put.text
    assert put.json()["listing"]["title"] == "Haferglück Nachtkerze"  # stored composed
    near = {"lat": 52.52, "lon": 13.405, "radius_m": 1000}
    found = httpx.get(f"{base}/v1/search", params={"q": f"{decomposed} nachtkerze", "mode": "keyword", **near})
    names = [r["product"]["name"] for r in found.json()["results"]]
    assert names[:1] == ["Haferglück Nachtkerze"], found.text
    by_brand = httpx.get(f"{base}/v1/search", params={"q": "nachtkerze", "brand": decomposed, **near})
    assert [r["product"]["brand"] for r in by_brand.json()["results"]] == ["Haferglück"], by_brand.text
