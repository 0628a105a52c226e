"""Talent search and buyers' saved freelancers through the HTTP API, against
real identity and gateway containers, RabbitMQ and PostgreSQL. Reputation's
events are written straight into the log (the gateway's view reads them from
there), which spares running whole contracts to get reviews."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from shared.eventstore import EventMetadata
from shared.schemas import registry
from tests.integration.helpers import wait_until
from tests.integration.test_identity_api import Api, assert_problem

pytestmark = pytest.mark.integration


def put(api: Api, path: str, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.put(api.url(path), headers=headers, timeout=30)


def seller(
    api: Api, profile: dict[str, Any], experience: dict[str, Any] | None = None
) -> dict[str, Any]:
    user = api.signup(["seller"])
    uid, token = user["user_id"], user["access_token"]
    changed = api.patch(f"/users/{uid}/seller-profile", profile, token)
    assert changed.status_code == 200, changed.text
    if experience:
        body = {"start_date": "2020-01-01", **experience}
        assert api.post(f"/users/{uid}/experience", body, token).status_code == 201
    return user


def contract(api: Api, seller_id: str, rating: int | None, on_time: bool = True) -> None:
    """A completed contract of the seller's, as reputation records it."""
    contract_id, buyer_id, now = str(uuid.uuid4()), str(uuid.uuid4()), datetime.now(UTC)
    opened = {
        "contract_id": contract_id,
        "buyer_id": buyer_id,
        "seller_id": seller_id,
        "outcome": "completed",
        "total_amount": 100_000,
        "total_paid": 100_000,
        "currency": "USD",
        "on_time": on_time,
        "ended_at": now,
        "closes_at": now + timedelta(days=14),
    }
    events = [("FeedbackWindowOpened", opened)]
    if rating is not None:
        review = {
            "contract_id": contract_id,
            "reviewer_id": buyer_id,
            "reviewee_id": seller_id,
            "reviewee_role": "seller",
            "rating": rating,
            "categories": {},
            "text": "Good work",
        }
        events += [
            ("ReviewSubmitted", review),
            ("ReviewsRevealed", {"contract_id": contract_id, "reason": "window_closed"}),
        ]
    meta = EventMetadata.root(buyer_id, source="reputation")
    api.store.append(f"feedback-{contract_id}", [registry.new_event(t, d, meta) for t, d in events])


def talent(api: Api) -> dict[str, dict[str, Any]]:
    """Three sellers (by name: the user and their tokens): two scored, one reviewed."""
    sellers = {
        "django": seller(
            api,
            {
                "headline": "Django developer",
                "bio": "I build online shops.",
                "skills": ["Python", "Django"],
                "hourly_rate": {"amount": 5000, "currency": "USD"},
            },
            {"title": "Backend engineer", "organisation": "Acme Furniture"},
        ),
        "react": seller(
            api,
            {
                "headline": "React designer",
                "skills": ["React", "TypeScript"],
                "hourly_rate": {"amount": 8000, "currency": "USD"},
            },
        ),
        "data": seller(
            api,
            {
                "headline": "Data engineer",
                "skills": ["Python", "Airflow"],
                "hourly_rate": {"amount": 6000, "currency": "EUR"},
            },
        ),
    }
    contract(api, sellers["django"]["user_id"], rating=5)
    contract(api, sellers["react"]["user_id"], rating=None, on_time=False)

    def ready() -> Any:
        page = api.get("/freelancers?limit=100").json()
        scored = [f for f in page["items"] if f["reputation"] is not None]
        # (and every profile's last text applied: the searches below read them)
        texts = api.get("/freelancers?q=engineer&limit=100").json()["total"] == 2
        return page if page["total"] == 3 and len(scored) == 2 and texts else None

    wait_until(ready, what="the sellers and their reputations in talent search")
    return sellers


def ids(api: Api, query: str) -> list[str]:
    response = api.get(f"/freelancers?{query}")
    assert response.status_code == 200, response.text
    return [f["user_id"] for f in response.json()["items"]]


def test_talent_search_by_text_skills_rate_reputation_sorts_and_pages(api: Api):
    s = {name: user["user_id"] for name, user in talent(api).items()}
    django, react, data = s["django"], s["react"], s["data"]
    assert ids(api, "q=django") == [django]
    assert ids(api, "q=acme") == [django]  # an experience's organisation
    assert set(ids(api, "q=engineer")) == {django, data}
    assert ids(api, "q=nosuchwordanywhere") == []
    assert set(ids(api, "skills=python")) == {django, data}
    assert ids(api, "skills=Python,DJANGO&skills_mode=all") == [django]
    assert set(ids(api, "skills=django,react")) == {django, react}
    assert ids(api, "currency=USD&rate_min=6000") == [react]
    assert ids(api, "currency=USD&rate_max=5000") == [django]
    assert ids(api, "currency=EUR") == [data]
    assert ids(api, "min_job_success=80") == [django]
    assert ids(api, "min_reviews=1") == [django]  # the reviewless are left out
    assert ids(api, "") == [django, react, data]  # by job success, the unscored last
    assert ids(api, "sort=rate&currency=USD") == [django, react]
    assert ids(api, "sort=rate_desc&currency=USD") == [react, django]
    assert ids(api, "q=engineer&sort=job_success") == [django, data]

    page = api.get("/freelancers?skills=python").json()
    assert page["total"] == 2
    assert [(c["skill"], c["count"]) for c in page["skill_counts"]] == [
        ("python", 2),
        ("airflow", 1),
        ("django", 1),
    ]
    found = api.get("/freelancers?q=django").json()["items"][0]
    assert found["headline"] == "Django developer" and found["skills"] == ["python", "django"]
    assert found["hourly_rate"] == {"amount": 5000, "currency": "USD"}
    assert found["reputation"]["reviews"] == 1 and found["reputation"]["job_success"] == 100
    assert "email" not in found

    walked, cursor = [], None
    while True:
        suffix = f"&cursor={cursor}" if cursor else ""
        body = api.get(f"/freelancers?limit=1{suffix}").json()
        assert body["total"] == 3
        walked += [f["user_id"] for f in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert walked == [django, react, data]
    first = api.get("/freelancers?limit=1").json()

    for bad in (
        "currency=USD&rate_min=9000&rate_max=100",  # min above max
        "rate_min=100",  # a rate without its currency
        "sort=cheapest",  # no such sort
        "sort=relevance",  # nothing to rank by
        "min_job_success=101",
        "limit=0",
        "unknown=1",
        f"sort=rate&currency=USD&cursor={first['next_cursor']}",  # another sort's cursor
        "cursor=not-a-cursor",
    ):
        assert_problem(api.get(f"/freelancers?{bad}"), 422, "invalid_input")


def test_a_buyer_saves_lists_and_unsaves_freelancers(api: Api):
    users = talent(api)
    s = {name: user["user_id"] for name, user in users.items()}
    buyer = api.signup(["buyer"])
    token = buyer["access_token"]
    for seller_id in (s["django"], s["react"], s["react"]):  # saving twice is once
        saved = put(api, f"/me/saved-freelancers/{seller_id}", token)
        assert saved.status_code == 204, saved.text

    listed = api.get("/me/saved-freelancers", token)
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [i["seller_id"] for i in items] == [s["react"], s["django"]]  # newest first
    assert items[1]["freelancer"]["headline"] == "Django developer"
    assert items[1]["freelancer"]["reputation"]["reviews"] == 1
    assert items[0]["freelancer"]["hourly_rate"] == {"amount": 8000, "currency": "USD"}
    first = api.get("/me/saved-freelancers?limit=1", token).json()
    rest = api.get(f"/me/saved-freelancers?limit=1&cursor={first['next_cursor']}", token).json()
    assert [i["seller_id"] for i in first["items"] + rest["items"]] == [s["react"], s["django"]]
    events = api.store.read_stream(f"user-{buyer['user_id']}")
    assert [e.type for e in events].count("FreelancerSaved") == 2

    removed = api.delete(f"/me/saved-freelancers/{s['react']}", token)
    assert removed.status_code == 204, removed.text
    assert api.delete(f"/me/saved-freelancers/{s['react']}", token).status_code == 204
    items = api.get("/me/saved-freelancers", token).json()["items"]
    assert [i["seller_id"] for i in items] == [s["django"]]

    a_seller = api.signup(["seller"])
    assert_problem(
        put(api, f"/me/saved-freelancers/{s['data']}", a_seller["access_token"]), 403, "forbidden"
    )
    assert_problem(api.get("/me/saved-freelancers", a_seller["access_token"]), 403, "forbidden")
    assert_problem(put(api, f"/me/saved-freelancers/{s['data']}", None), 401, "unauthorized")
    assert_problem(put(api, f"/me/saved-freelancers/{uuid.uuid4()}", token), 404, "not_found")
    assert_problem(put(api, "/me/saved-freelancers/not-an-id", token), 404, "not_found")
    other_buyer = api.signup(["buyer"])
    problem = assert_problem(
        put(api, f"/me/saved-freelancers/{other_buyer['user_id']}", token), 422, "invalid_input"
    )
    assert "seller_id" in problem["errors"]

    # An erased seller leaves the list and the search.
    gone = api.delete("/me", users["django"]["access_token"])
    assert gone.status_code == 200, gone.text
    wait_until(
        lambda: api.get("/me/saved-freelancers", token).json()["items"] == [],
        what="the erased seller off the list",
    )
    assert s["django"] not in ids(api, "limit=100")
    assert_problem(put(api, f"/me/saved-freelancers/{s['django']}", token), 404, "not_found")
