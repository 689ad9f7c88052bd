"""Recommendation state that lasts: Redis shared by two app instances, restart with artifacts, runtime items,
rating delete, "not interested", events, refit swaps, and the kNN fallback's truthful reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from companion.app import create_app
from models.recsys import bundle as artifacts
from models.recsys.engine import RecEngine
from tests.companion.conftest import FAQ_SRC, make_settings
from tests.support.redis_server import RedisServer

ADMIN = {"X-API-Key": "dev-admin-key"}
URL = "/v1/recommendations"


@pytest.fixture()
def pair(redis_url: str, engine: RecEngine, encoder: object, tmp_path: Path) -> Iterator[tuple[TestClient, TestClient]]:
    """Two companion app instances (separate processes in production) on one real redis-server and artifact dir."""
    settings = make_settings(redis_url, FAQ_SRC, recs_artifact_dir=tmp_path / "artifacts")
    with TestClient(create_app(settings, engine=engine, encoder=encoder)) as a, \
            TestClient(create_app(settings, engine=engine, encoder=encoder)) as b:  # type: ignore[arg-type]
        yield a, b


def _ids(c: TestClient, user: str, **params: object) -> list[str]:
    r = c.get(f"{URL}/users/{user}", params=params)
    assert r.status_code == 200, r.text
    return [it["item_id"] for it in r.json()["items"]]


def test_two_apps_share_ratings_deletes_hidden_and_events(pair: tuple[TestClient, TestClient]) -> None:
    a, b = pair
    user = "shared-user"
    assert b.get(f"{URL}/users/{user}").json()["fallback_reason"] == "cold_start"
    ratings = [{"item_id": "50", "rating": 5}, {"item_id": "172", "rating": 5}, {"item_id": "313", "rating": 2}]
    assert a.post(f"{URL}/users/{user}/ratings", json={"ratings": ratings}).json()["n_ratings"] == 3
    body = b.get(f"{URL}/users/{user}", params={"k": 10, "strategy": "svd"}).json()
    assert body["fallback"] is False and body["history_bucket"] == "3"
    assert not {"50", "172", "313"} & {it["item_id"] for it in body["items"]}
    # Delete on b, seen by a: the film can be recommended again and the count drops.
    r = b.delete(f"{URL}/users/{user}/ratings/172")
    assert r.status_code == 200 and r.json()["n_ratings"] == 2
    assert b.delete(f"{URL}/users/{user}/ratings/172").json()["error"]["code"] == "unknown_rating"
    assert a.get(f"{URL}/users/{user}/items/172", params={"strategy": "svd"}).json()["fallback"] is False
    # "Not interested" on a: b never shows it again, in any strategy; undo brings it back.
    first = _ids(b, user, k=5, strategy="hybrid")[0]
    assert a.post(f"{URL}/users/{user}/not-interested", json={"item_id": first}).status_code == 204
    for strategy in ("svd", "knn", "content", "implicit", "hybrid"):
        assert first not in _ids(b, user, k=50, strategy=strategy), strategy
    assert b.delete(f"{URL}/users/{user}/not-interested/{first}").status_code == 204
    assert first == _ids(a, user, k=5, strategy="hybrid")[0]
    # Events: a user with only plays gets implicit recommendations from another process, not a cold start.
    ev = {"events": [{"item_id": "50", "type": "play"}, {"item_id": "181", "type": "watch", "seconds": 1200},
                     {"item_id": "222", "type": "click"}, {"item_id": "222", "type": "skip"}]}
    out = a.post(f"{URL}/users/watcher/events", json=ev).json()
    assert out["weights"] == {"50": 1.0, "181": 2.0, "222": -0.5}
    body = b.get(f"{URL}/users/watcher", params={"strategy": "implicit", "k": 5}).json()
    assert body["fallback"] is False and not {"50", "181"} & {it["item_id"] for it in body["items"]}
    assert all("watched" in it["reason"] for it in body["items"])
    assert b.get(f"{URL}/users/watcher", params={"strategy": "svd"}).json()["fallback_reason"] == "no_ratings"


def test_runtime_item_is_content_recommended_at_once_and_collaborative_after_refit(
        pair: tuple[TestClient, TestClient], engine: RecEngine) -> None:
    a, b = pair
    sw = engine.bundle.catalogue["50"]
    item = {"title": "Star Wars: Despecialized Edition", "year": sw.year, "genres": sw.genres,
            "director": sw.director, "writer": sw.writer, "cast": sw.cast, "plot": sw.plot}
    assert a.put(f"{URL}/items/new-film", json=item).status_code == 401
    assert a.put(f"{URL}/items/new-film", json=item, headers=ADMIN).status_code == 200
    similar = b.get(f"{URL}/items/50/similar", params={"k": 3}).json()["items"]
    assert similar[0]["item_id"] == "new-film" and "Star Wars" in similar[0]["reason"]
    assert b.get(f"{URL}/items/new-film/similar", params={"k": 3}).status_code == 200
    fan = "sw-fan"
    b.post(f"{URL}/users/{fan}/ratings", json={"ratings": [{"item_id": "50", "rating": 5},
                                                          {"item_id": "1", "rating": 2}]})
    assert "new-film" in _ids(a, fan, k=5, strategy="content")
    assert "new-film" not in _ids(a, fan, k=100, strategy="svd")  # not fitted yet: no collaborative score
    # Rated by enough people, then refit on a: both apps serve the new version, which knows the item.
    for n in range(12):
        a.post(f"{URL}/users/rater-{n}/ratings", json={"ratings": [{"item_id": "new-film", "rating": 5},
                                                                   {"item_id": "50", "rating": 5}]})
    old = a.get(f"{URL}/model").json()["model_version"]
    refit = a.post("/v1/admin/recommendations/refit", headers=ADMIN)
    assert refit.status_code == 200, refit.text
    new = refit.json()
    assert new["model_version"] != old and new["items"] == 1683
    assert b.get(f"{URL}/users/{fan}", params={"strategy": "svd"}).json()["model_version"] == new["model_version"]
    est = b.get(f"{URL}/users/{fan}/items/new-film", params={"strategy": "svd"}).json()
    assert est["fallback"] is False and est["model_version"] == new["model_version"]


def test_runtime_item_rated_by_known_users_is_collaborative_before_any_refit(
        pair: tuple[TestClient, TestClient], engine: RecEngine) -> None:
    """SVD item fold-in: ratings of a runtime item by users the model was fitted on give it factors at once."""
    a, b = pair
    item = {"title": "A New Space Opera", "year": 1997, "genres": ["Sci-Fi"]}
    assert a.put(f"{URL}/items/opera", json=item, headers=ADMIN).status_code == 200
    fan = "opera-fan"
    a.post(f"{URL}/users/{fan}/ratings", json={"ratings": [{"item_id": "50", "rating": 5},
                                                          {"item_id": "172", "rating": 5}]})
    before = b.get(f"{URL}/users/{fan}/items/opera", params={"strategy": "svd"}).json()
    assert before["fallback"] is True  # nobody rated it: only content knows it
    raters = [u for u in engine.bundle.data.user_ids[:12]]  # ml-100k users: fitted, with factors
    for u in raters:
        r = a.post(f"{URL}/users/{u}/ratings", json={"ratings": [{"item_id": "opera", "rating": 5}]})
        assert r.status_code == 200, r.text
    version = engine.version
    est = b.get(f"{URL}/users/{fan}/items/opera", params={"strategy": "svd"}).json()
    assert est["fallback"] is False and est["model_version"] == version  # the other process, no refit
    assert est["estimate"] > engine.bundle.svd.global_mean  # twelve 5-star ratings pull it up
    recs = b.get(f"{URL}/users/{fan}", params={"strategy": "svd", "k": 100}).json()
    hit = [it for it in recs["items"] if it["item_id"] == "opera"]
    assert recs["model_version"] == version and hit and "12 ratings of this new title" in hit[0]["reason"]
    # Below min_support (10 fitted raters) the SVD list drops it again; the estimate remains.
    for u in raters[:3]:
        assert a.delete(f"{URL}/users/{u}/ratings/opera").status_code == 200
    assert "opera" not in _ids(b, fan, k=100, strategy="svd")


def test_state_and_model_survive_restart(engine: RecEngine, encoder: object, tmp_path: Path) -> None:
    server = RedisServer(workdir=tmp_path / "redis")
    server.start()
    try:
        root = tmp_path / "artifacts"
        artifacts.save(engine.bundle, root)
        settings = make_settings(server.url(0), FAQ_SRC, recs_artifact_dir=root)
        with TestClient(create_app(settings, encoder=encoder)) as c:  # type: ignore[arg-type]
            assert c.get(f"{URL}/model").json()["model_version"] == engine.version  # loaded, not refitted
            c.post(f"{URL}/users/keeper/ratings", json={"ratings": [{"item_id": "50", "rating": 5}]})
            c.post(f"{URL}/users/keeper/not-interested", json={"item_id": "181"})
            before = _ids(c, "keeper", k=10, strategy="content")
        server.restart()  # same port and AOF: what production Redis persistence gives
        with TestClient(create_app(settings, encoder=encoder)) as c:  # type: ignore[arg-type]
            body = c.get(f"{URL}/users/keeper", params={"k": 10, "strategy": "content"}).json()
            assert body["model_version"] == engine.version and body["fallback"] is False
            assert [it["item_id"] for it in body["items"]] == before and "181" not in before
            assert c.get(f"{URL}/users/1").json()["fallback"] is False  # the seeded data set is still there
    finally:
        server.stop()


def test_knn_without_similar_users_is_a_flagged_popular_fallback(client: TestClient) -> None:
    for ratings in ([{"item_id": "50", "rating": 5}],
                    [{"item_id": "50", "rating": 4}, {"item_id": "100", "rating": 4}]):  # one rating; all equal
        user = f"flat-{len(ratings)}"
        client.post(f"{URL}/users/{user}/ratings", json={"ratings": ratings})
        body = client.get(f"{URL}/users/{user}", params={"strategy": "knn", "k": 10}).json()
        assert body["fallback"] is True and body["fallback_reason"] == "no_similar_users"
        ids = [it["item_id"] for it in body["items"]]
        assert ids != sorted(ids, key=int) and "1" not in ids[:3]  # never catalogue id order
        assert all(it["source"] == "popularity" and it["reason"].startswith("popular:") for it in body["items"])


def test_reasons_name_the_rated_items_that_drive_the_score(client: TestClient) -> None:
    user = "reasons-user"
    client.post(f"{URL}/users/{user}/ratings", json={"ratings": [{"item_id": "50", "rating": 5},
                                                                {"item_id": "98", "rating": 5},
                                                                {"item_id": "1", "rating": 3}]})
    for strategy, needle in (("svd", "because you rated"), ("content", "with"), ("implicit", "because you rated"),
                             ("knn", "users with tastes like yours")):
        items = client.get(f"{URL}/users/{user}", params={"strategy": strategy, "k": 3}).json()["items"]
        assert all(needle in it["reason"] for it in items), (strategy, items)
    svd = client.get(f"{URL}/users/{user}", params={"strategy": "svd", "k": 3}).json()["items"]
    assert all(any(t in it["reason"] for t in ("Star Wars", "Silence of the Lambs", "Toy Story")) for it in svd)


def test_rating_times_are_stored_and_one_rating_gets_trending_or_co_rated_reasons(
        client: TestClient, redis_server: RedisServer) -> None:
    import redis

    from service.store.recs import RecsStore

    user = "one-rating"
    client.post(f"{URL}/users/{user}/ratings", json={"ratings": [{"item_id": "50", "rating": 5},
                                                                {"item_id": "1", "rating": 4}]})
    store = RecsStore(redis.Redis.from_url(redis_server.url(2)))  # the `client` app's DB
    assert set(store.user_state(user).rating_times) == {"50", "1"}
    assert client.delete(f"{URL}/users/{user}/ratings/1").status_code == 200
    assert set(store.user_state(user).rating_times) == {"50"}
    body = client.get(f"{URL}/users/{user}", params={"strategy": "hybrid", "k": 10}).json()
    assert body["fallback"] is False and body["history_bucket"] == "1"
    sources = {it["source"] for it in body["items"]}
    assert sources & {"trending", "corated"}, body["items"]
    for it in body["items"]:  # rated now, after the newest fitted rating (1998): the reason says "lately"
        if it["source"] == "trending":
            assert it["reason"].startswith("popular lately:"), it
        if it["source"] == "corated":
            assert "who watched Star Wars also rated it" in it["reason"], it
