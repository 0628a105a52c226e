"""Talent search and saved freelancers, as the gateway's views hold them:
identity's profiles and reputation's figures projected from the log into one
database, on SQLite and on PostgreSQL (each has its own full-text index)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from marshmallow import ValidationError

from gateway.talent import search_freelancers
from services.identity import views as identity_views
from services.identity.api import FreelancerSearchQuery
from services.identity.views import ProfilesProjection
from services.reputation.views import ReputationView
from shared.errors import InvalidInput
from shared.eventstore import EventMetadata, NewEvent
from shared.eventstore.sql import SqlEventStore
from shared.projection import ProjectionRunner
from shared.schemas import load_all_event_schemas, registry
from shared.sql import create_sql_engine


def event(actor: str, event_type: str, data: dict[str, Any], source: str) -> NewEvent:
    version, encoded = registry.encode(event_type, data)
    return NewEvent(event_type, encoded, EventMetadata.root(actor, source), version)


class World:
    """An event log and the two views over it, in one database."""

    def __init__(self, store: SqlEventStore, engine: sa.Engine) -> None:
        self.store = store
        self.engine = engine
        self.runners = [
            ProjectionRunner(ProfilesProjection(), store, engine),
            ProjectionRunner(ReputationView(), store, engine),
        ]
        for runner in self.runners:
            runner.prepare()

    def user(self, user_id: str, *events: tuple[str, dict[str, Any]]) -> None:
        self.store.append(f"user-{user_id}", [event(user_id, t, d, "identity") for t, d in events])

    def seller(
        self,
        headline: str,
        skills: list[str],
        rate: dict[str, Any] | None,
        bio: str = "",
        experience: dict[str, Any] | None = None,
        roles: tuple[str, ...] = ("seller",),
    ) -> str:
        user_id = str(uuid.uuid4())
        events: list[tuple[str, dict[str, Any]]] = [
            (
                "UserRegistered",
                {
                    "user_id": user_id,
                    "email": f"{user_id}@example.com",
                    "password_hash": "x",  # pragma: allowlist secret
                    "roles": list(roles),
                },
            ),
            ("SellerProfileUpdated", {"headline": headline, "bio": bio, "hourly_rate": rate}),
            ("SellerSkillsSet", {"skills": skills}),
        ]
        if experience:
            entry = {"experience_id": str(uuid.uuid4()), "start_date": date(2020, 1, 1)}
            events.append(("ExperienceAdded", {**entry, **experience}))
        self.user(user_id, *events)
        return user_id

    def buyer(self) -> str:
        user_id = str(uuid.uuid4())
        self.user(
            user_id,
            (
                "UserRegistered",
                {
                    "user_id": user_id,
                    "email": f"{user_id}@example.com",
                    "password_hash": "x",  # pragma: allowlist secret
                    "roles": ["buyer"],
                },
            ),
        )
        return user_id

    def contract(self, seller_id: str, on_time: bool, rating: int | None) -> None:
        """A completed contract of the seller's, reviewed by its buyer (or not)."""
        contract_id, buyer_id = str(uuid.uuid4()), str(uuid.uuid4())
        now = datetime.now(UTC)
        events = [
            (
                "FeedbackWindowOpened",
                {
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
                },
            )
        ]
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
        self.store.append(
            f"feedback-{contract_id}", [event(buyer_id, t, d, "reputation") for t, d in events]
        )

    def erase(self, user_id: str) -> None:
        self.user(user_id, ("PersonalDataErased", {"user_id": user_id, "erased_by": user_id}))

    def save(self, buyer_id: str, seller_id: str, saved: bool = True) -> None:
        kind = "FreelancerSaved" if saved else "FreelancerUnsaved"
        self.user(buyer_id, (kind, {"seller_id": seller_id}))

    def catch_up(self) -> None:
        for runner in self.runners:
            runner.catch_up()

    def search(self, **params: Any) -> dict[str, Any]:
        query = FreelancerSearchQuery().load({k: str(v) for k, v in params.items()})
        with self.engine.connect() as conn:
            return search_freelancers(conn, query)

    def ids(self, **params: Any) -> list[str]:
        return [f["user_id"] for f in self.search(**params)["items"]]


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    load_all_event_schemas()
    store = SqlEventStore(f"sqlite:///{tmp_path / 'events.sqlite'}")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'gateway.sqlite'}"
    else:
        url = request.getfixturevalue("fresh_pg")
    engine = create_sql_engine(url)
    yield World(store, engine)
    engine.dispose()
    store.close()


USD = "USD"


@pytest.fixture
def sellers(world: World) -> dict[str, str]:
    django = world.seller(
        "Django developer",
        ["python", "django"],
        {"amount": 5000, "currency": USD},
        bio="I build online shops.",
        experience={
            "title": "Backend engineer",
            "organisation": "Acme Furniture",
            "description": "Payments and stock for a webshop.",
        },
    )
    react = world.seller(
        "React designer", ["react", "typescript"], {"amount": 8000, "currency": USD}
    )
    data = world.seller("Data engineer", ["python", "airflow"], {"amount": 6000, "currency": "EUR"})
    erased = world.seller("Django expert", ["python", "django"], {"amount": 100, "currency": USD})
    world.erase(erased)
    world.buyer()
    world.contract(django, on_time=True, rating=5)
    world.contract(django, on_time=True, rating=4)
    world.contract(react, on_time=False, rating=None)
    world.catch_up()
    return {"django": django, "react": react, "data": data, "erased": erased}


def test_full_text_reaches_headline_bio_skills_and_experience(
    world: World, sellers: dict[str, str]
) -> None:
    django = sellers["django"]
    assert world.ids(q="django") == [django]  # the erased Django expert never appears
    assert world.ids(q="shops") == [django]  # bio (stemmed, or a prefix on SQLite)
    assert world.ids(q="acme") == [django]  # an organisation
    assert world.ids(q="payments") == [django]  # an experience's description
    assert world.ids(q="typescript") == [sellers["react"]]  # a skill
    assert set(world.ids(q="engineer")) == {django, sellers["data"]}
    assert world.ids(q="nosuchwordanywhere") == []
    found = world.search(q="django")["items"][0]
    assert found["headline"] == "Django developer" and found["bio"] == "I build online shops."
    assert found["hourly_rate"] == {"amount": 5000, "currency": USD}
    assert found["reputation"]["reviews"] == 2 and found["reputation"]["job_success"] == 100


def test_filters_on_skills_rate_job_success_and_reviews(
    world: World, sellers: dict[str, str]
) -> None:
    django, react, data = sellers["django"], sellers["react"], sellers["data"]
    assert set(world.ids(skills="python")) == {django, data}
    assert world.ids(skills="Python, DJANGO", skills_mode="all") == [django]
    assert set(world.ids(skills="django,react")) == {django, react}
    assert set(world.ids(currency=USD)) == {django, react}
    assert world.ids(currency=USD, rate_min=6000) == [react]
    assert world.ids(currency=USD, rate_max=5000) == [django]
    assert world.ids(currency="EUR", rate_min=6000, rate_max=6000) == [data]
    assert world.ids(min_job_success=80) == [django]
    assert set(world.ids(min_job_success=0)) == {django, react}  # data has no score
    assert world.ids(min_reviews=1) == [django]
    assert len(world.ids(min_reviews=0)) == 3


def test_sorts_totals_and_facets(world: World, sellers: dict[str, str]) -> None:
    django, react, data = sellers["django"], sellers["react"], sellers["data"]
    # without text: by job success, the unscored last
    assert world.ids() == [django, react, data]
    assert world.ids(sort="job_success") == [django, react, data]
    assert world.ids(sort="rate", currency=USD) == [django, react]
    assert world.ids(sort="rate_desc", currency=USD) == [react, django]
    assert world.ids(q="engineer python", sort="relevance")[0] in (django, data)
    page = world.search(skills="python")
    assert page["total"] == 2
    assert page["skill_counts"] == [
        {"skill": "python", "count": 2},
        {"skill": "airflow", "count": 1},
        {"skill": "django", "count": 1},
    ]
    nothing = world.search(q="nosuchwordanywhere")
    assert (nothing["total"], nothing["skill_counts"], nothing["next_cursor"]) == (0, [], None)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"sort": "rate", "currency": USD},
        {"sort": "rate_desc", "currency": USD},
        {"q": "engineer"},
    ],
)
def test_cursor_paging_walks_every_match_once(
    world: World, sellers: dict[str, str], params: dict[str, Any]
) -> None:
    whole = world.ids(**params, limit=100)
    walked, cursor = [], None
    while True:
        page = world.search(**params, limit=1, **({"cursor": cursor} if cursor else {}))
        assert page["total"] == len(whole)
        walked += [f["user_id"] for f in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == whole and len(set(walked)) == len(walked) > 0


def test_bad_queries_are_refused(world: World, sellers: dict[str, str]) -> None:
    with pytest.raises(InvalidInput):
        world.search(sort="relevance")  # no text to rank by
    cursor = world.search(limit=1)["next_cursor"]
    with pytest.raises(InvalidInput):
        world.search(sort="rate", currency=USD, cursor=cursor)  # another sort's cursor
    with pytest.raises(InvalidInput):
        world.search(cursor="not-a-cursor")
    with pytest.raises(InvalidInput):
        world.search(skills=" , x" + "y" * 60)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"rate_min": "9000", "rate_max": "5000", "currency": USD}, "rate_min"),
        ({"rate_min": "100"}, "currency"),
        ({"sort": "rate"}, "currency"),
        ({"sort": "cheapest"}, "sort"),
        ({"min_job_success": "101"}, "min_job_success"),
        ({"currency": "usd"}, "currency"),
        ({"whatever": "1"}, "whatever"),
    ],
)
def test_the_query_schema_refuses_incoherent_queries(params: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        FreelancerSearchQuery().load(params)
    assert field in refused.value.messages


def test_profile_changes_and_erasure_move_the_index(world: World, sellers: dict[str, str]) -> None:
    react = sellers["react"]
    world.user(react, ("SellerProfileUpdated", {"headline": "Vue specialist"}))
    world.user(react, ("SellerSkillsSet", {"skills": ["vue"]}))
    world.catch_up()
    assert world.ids(q="react") == []
    assert world.ids(q="vue") == [react]
    assert world.ids(skills="vue") == [react]
    world.erase(sellers["django"])
    world.catch_up()
    assert world.ids(q="django") == []
    assert sellers["django"] not in world.ids(limit=100)
    assert world.search(skills="django")["total"] == 0


def test_saved_freelancers_newest_first_and_gone_with_an_erased_party(
    world: World, sellers: dict[str, str]
) -> None:
    buyer, other = world.buyer(), world.buyer()
    django, react, data = sellers["django"], sellers["react"], sellers["data"]
    for seller in (django, react, data):
        world.save(buyer, seller)
    world.save(other, react)
    world.save(buyer, data, saved=False)
    world.catch_up()
    with world.engine.connect() as conn:
        first = identity_views.list_saved(conn, buyer, 1, None)
        second = identity_views.list_saved(conn, buyer, 5, first["next_cursor"])
        assert identity_views.is_saved(conn, buyer, react)
        assert not identity_views.is_saved(conn, buyer, data)
        assert identity_views.seller_state(conn, react) is None
        assert identity_views.seller_state(conn, buyer) == "not_seller"
        assert identity_views.seller_state(conn, sellers["erased"]) == "missing"
        assert identity_views.seller_state(conn, str(uuid.uuid4())) == "missing"
    assert [i["seller_id"] for i in first["items"] + second["items"]] == [react, django]
    assert second["next_cursor"] is None
    assert first["items"][0]["freelancer"]["headline"] == "React designer"

    world.erase(react)  # an erased seller leaves every list
    world.erase(other)  # an erased buyer's list goes
    world.catch_up()
    with world.engine.connect() as conn:
        assert [
            i["seller_id"] for i in identity_views.list_saved(conn, buyer, 5, None)["items"]
        ] == [django]
        saved = identity_views.saved_freelancers
        assert conn.execute(sa.select(saved).where(saved.c.buyer_id == other)).all() == []


def test_a_rebuild_gives_the_live_index(world: World, sellers: dict[str, str]) -> None:
    buyer = world.buyer()
    world.save(buyer, sellers["django"])
    world.catch_up()
    live = (world.search(limit=100), world.search(q="engineer", limit=100))
    world.runners[0].rebuild()
    assert (world.search(limit=100), world.search(q="engineer", limit=100)) == live
