"""The Mustering server's HTTP contract, against the real server on 127.0.0.1."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pyarrow as pa
import pyarrow.ipc
import pytest

from sync_core.protocol import API_PREFIX, ARROW_STREAM, DATASETS, PICTURE_BATCH_MAX, Health
from sync_core.server.app import REQUEST_BODY_MAX, SnapshotCache
from sync_core.server.process import ServerProcess
from sync_core.server.store import ServerStore, Snapshot

ON_BOTH_ENGINES = True


@pytest.fixture
def http(live_server: ServerProcess) -> httpx.Client:
    with httpx.Client(base_url=live_server.url, timeout=10) as client:
        yield client


def _token(http: httpx.Client, username: str = "demo", password: str = "demo") -> dict[str, str]:
    answer = http.post(f"{API_PREFIX}/sign-in", json={"username": username, "password": password})
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def test_health_reports_every_component_up(
    http: httpx.Client, live_server: ServerProcess, store_engine: str
) -> None:
    health = Health.model_validate(http.get("/health").json())
    assert (health.api, health.db, health.webapp) == ("up", "up", "up")
    assert health.db_engine == store_engine
    assert health.server_id == live_server.server_id


def test_status_page_is_html_with_the_server_id(http: httpx.Client, live_server: ServerProcess) -> None:
    page = http.get("/")
    assert page.headers["content-type"].startswith("text/html")
    assert live_server.server_id in page.text


@pytest.mark.parametrize(("username", "password"), [("demo", "wrong"), ("nobody", "demo")])
def test_wrong_credentials_are_refused(http: httpx.Client, username: str, password: str) -> None:
    answer = http.post(f"{API_PREFIX}/sign-in", json={"username": username, "password": password})
    assert answer.status_code == 401
    assert answer.json()["detail"] == "Invalid login, please try again"


def test_sign_in_returns_role_and_server_id(http: httpx.Client, live_server: ServerProcess) -> None:
    answer = http.post(f"{API_PREFIX}/sign-in", json={"username": "office", "password": "office"}).json()
    assert answer["role"] == "office"
    assert answer["server_id"] == live_server.server_id


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/snapshots"), ("GET", "/snapshots/x/users"), ("POST", "/pictures")],
)
@pytest.mark.parametrize("auth", [None, "Bearer not-a-token"])
def test_data_endpoints_need_a_token(http: httpx.Client, method: str, path: str, auth: str | None) -> None:
    headers = {"Authorization": auth} if auth else {}
    answer = http.request(method, f"{API_PREFIX}{path}", headers=headers, json={"sha256": []})
    assert answer.status_code == 401


def test_snapshot_serves_each_dataset_as_arrow(http: httpx.Client) -> None:
    headers = _token(http)
    manifest = http.post(f"{API_PREFIX}/snapshots", headers=headers).json()
    assert set(manifest["counts"]) == set(DATASETS)
    for key in DATASETS:
        answer = http.get(f"{API_PREFIX}/snapshots/{manifest['snapshot_id']}/{key}", headers=headers)
        assert answer.headers["content-type"] == ARROW_STREAM
        assert pa.ipc.open_stream(answer.content).read_all().num_rows == manifest["counts"][key]


def test_unknown_snapshot_is_404(http: httpx.Client) -> None:
    answer = http.get(f"{API_PREFIX}/snapshots/nope/users", headers=_token(http))
    assert answer.status_code == 404


def test_picture_batches_are_bounded(http: httpx.Client) -> None:
    hashes = ["0" * 64] * (PICTURE_BATCH_MAX + 1)
    answer = http.post(f"{API_PREFIX}/pictures", headers=_token(http), json={"sha256": hashes})
    assert answer.status_code == 422


@pytest.mark.parametrize("sha256", ["x'); DROP TABLE pictures; --", "A" * 64, "0" * 63])
def test_a_picture_is_asked_for_by_its_hash_only(http: httpx.Client, sha256: str) -> None:
    answer = http.post(f"{API_PREFIX}/pictures", headers=_token(http), json={"sha256": [sha256]})
    assert answer.status_code == 422
    found = http.post(f"{API_PREFIX}/pictures", headers=_token(http), json={"sha256": ["0" * 64]})
    assert found.status_code == 200 and pa.ipc.open_stream(found.content).read_all().num_rows == 0


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_an_oversize_body_is_refused_before_it_is_read_whole(http: httpx.Client, declared: bool) -> None:
    body = b'{"registrations": [' + b" " * REQUEST_BODY_MAX + b"]}"
    content = body if declared else iter([body[i : i + 2**20] for i in range(0, len(body), 2**20)])
    headers = {**_token(http), "content-type": "application/json"}
    answer = http.post(f"{API_PREFIX}/registrations", headers=headers, content=content)
    assert answer.status_code == 413
    assert http.get("/health").json()["api"] == "up"


def test_an_unchanged_server_serves_the_same_snapshot_until_a_change(own_server: ServerProcess) -> None:
    with httpx.Client(base_url=own_server.url, timeout=10) as http:
        headers = _token(http)
        first = http.post(f"{API_PREFIX}/snapshots", headers=headers).json()
        again = http.post(f"{API_PREFIX}/snapshots", headers=headers).json()
        assert again == first
        office = _token(http, "office", "office")
        change = {"changes": [{"key": "lifeboats", "id": "LB01", "op": "set", "fields": {"capacity": 300}}]}
        assert http.post(f"{API_PREFIX}/admin/changes", headers=office, json=change).status_code == 200
        after = http.post(f"{API_PREFIX}/snapshots", headers=headers).json()
        assert after["cursor"] > first["cursor"] and after["snapshot_id"] != first["snapshot_id"]
        lifeboats = http.get(f"{API_PREFIX}/snapshots/{after['snapshot_id']}/lifeboats", headers=headers)
        table = pa.ipc.open_stream(lifeboats.content).read_all().to_pylist()
        assert next(row for row in table if row["code"] == "LB01")["capacity"] == 300


def test_devices_asking_for_a_snapshot_at_once_share_one_read(server_store: ServerStore) -> None:
    cache = SnapshotCache()
    asked, taken = [], []
    release = threading.Event()

    def latest() -> int:
        asked.append(1)
        return server_store.latest()

    def take() -> Snapshot:  # the first read lasts until the other devices have asked
        taken.append(1)
        assert release.wait(10)
        return server_store.snapshot()

    with ThreadPoolExecutor(4) as threads:
        answers = [threads.submit(cache.current, latest, take) for _ in range(4)]
        for _ in range(1000):
            if len(asked) >= 4:
                break
            threading.Event().wait(0.01)
        release.set()
        ids = {answer.result(10).snapshot_id for answer in answers}
    assert len(asked) >= 4 and len(taken) == 1 and len(ids) == 1
