"""Personal data in the log: encrypted per person, read back, shredded with the key."""

from __future__ import annotations

import pytest
from marshmallow import Schema, fields, validate

from shared.eventstore import EventMetadata, NewEvent
from shared.eventstore.sql import SqlEventStore
from shared.personal import (
    ERASED,
    SUBJECT,
    MemoryKeyring,
    PersonalDataError,
    PersonalDataStore,
    SqlKeyring,
    associated_data,
    erase_fields,
    is_sealed,
    new_key,
    seal,
    unseal,
)
from shared.schemas import ALL, EventRegistry, SchemaError


def test_a_sealed_value_opens_only_with_its_key_and_owner():
    key = new_key()
    token = seal("ada@example.com", key, associated_data("identity", "u1"))
    assert is_sealed(token) and "ada" not in token
    assert unseal(token, key, associated_data("identity", "u1")) == "ada@example.com"
    assert seal("x", key, b"a") != seal("x", key, b"a")  # a fresh nonce each time
    with pytest.raises(PersonalDataError):
        unseal(token, key, associated_data("identity", "u2"))  # moved to another person
    with pytest.raises(PersonalDataError):
        unseal(token, new_key(), associated_data("identity", "u1"))


def test_without_its_key_a_value_reads_as_erased():
    token = seal("secret", new_key(), b"")
    assert unseal(token, None, b"") == ERASED


def test_erase_fields_touches_only_that_persons_fields():
    personal = {"text": "sender_id", "bio": SUBJECT}
    data = {"sender_id": "a", "text": "hello", "bio": "me", "n": 1}
    assert erase_fields(personal, data, "a", subject="b", actor="a") == {
        **data,
        "text": ERASED,
    }
    assert erase_fields(personal, data, "b", subject="b", actor="a") == {**data, "bio": ERASED}


@pytest.fixture
def schemas() -> EventRegistry:
    reg = EventRegistry()

    @reg.event("MessagePosted", published=ALL, personal={"text": "sender_id"})
    class MessagePosted(Schema):
        sender_id = fields.String(required=True)
        text = fields.String(required=True)
        seq = fields.Integer(load_default=0)

    @reg.event("BioSet", personal={"bio": SUBJECT})
    class BioSet(Schema):
        bio = fields.String(allow_none=True)

    return reg


def test_personal_fields_must_be_plain_strings_of_a_known_person():
    reg = EventRegistry()
    with pytest.raises(SchemaError, match="must be a String"):

        @reg.event("A", personal={"n": SUBJECT})
        class A(Schema):
            n = fields.Integer()

    with pytest.raises(SchemaError, match="cannot be validated"):

        @reg.event("B", personal={"email": SUBJECT})
        class B(Schema):
            email = fields.String(validate=validate.Length(max=3))

    with pytest.raises(SchemaError, match="unknown"):

        @reg.event("C", personal={"text": "author_id"})
        class C(Schema):
            text = fields.String()


def message(text: str, sender: str = "u1") -> NewEvent:
    meta = EventMetadata.root(sender, source="messaging")
    return NewEvent("MessagePosted", {"sender_id": sender, "text": text}, meta)


@pytest.fixture(params=["memory", "sql"])
def store(request, tmp_path, schemas: EventRegistry) -> PersonalDataStore:
    backend = SqlEventStore(f"sqlite:///{tmp_path / 'events.sqlite'}")
    keyring = MemoryKeyring() if request.param == "memory" else SqlKeyring(backend.engine)
    return PersonalDataStore(backend, keyring, schemas)


def test_the_log_holds_ciphertext_and_readers_get_the_text(store: PersonalDataStore):
    store.append("conversation-1", [message("meet at noon"), message("ok", "u2")])
    raw = store.inner.read_stream("conversation-1")
    assert all(is_sealed(e.data["text"]) for e in raw)
    assert raw[0].data["sender_id"] == "u1"  # ids stay readable
    assert [e.data["text"] for e in store.read_stream("conversation-1")] == ["meet at noon", "ok"]
    assert [e.data["text"] for e in store.read_all()] == ["meet at noon", "ok"]
    with store.subscribe() as subscription:
        assert [e.data["text"] for e in subscription.next_batch(timeout=0.1)] == [
            "meet at noon",
            "ok",
        ]


def test_erasing_a_person_shreds_their_fields_only(store: PersonalDataStore):
    store.append("conversation-1", [message("meet at noon"), message("ok", "u2")])
    store.erase("messaging", "u1")
    assert [e.data["text"] for e in store.read_stream("conversation-1")] == [ERASED, "ok"]
    assert [e.data["text"] for e in store.read_all()] == [ERASED, "ok"]
    # what is recorded about them afterwards is stored erased, not under a new key
    store.append("conversation-1", [message("again")])
    assert store.inner.read_stream("conversation-1")[-1].data["text"] == ERASED
    store.erase("messaging", "u1")  # twice is fine


def test_keys_are_per_service(store: PersonalDataStore):
    store.append("conversation-1", [message("hello")])
    store.erase("identity", "u1")  # another service's keys for the same person
    assert store.read_stream("conversation-1")[0].data["text"] == "hello"


def test_none_and_undeclared_types_pass_through(store: PersonalDataStore):
    meta = EventMetadata.root("u1", source="identity")
    store.append(
        "user-u1",
        [NewEvent("BioSet", {"bio": None}, meta), NewEvent("Other", {"text": "plain"}, meta)],
    )
    assert [e.data for e in store.inner.read_stream("user-u1")] == [
        {"bio": None},
        {"text": "plain"},
    ]


def test_an_erased_field_still_decodes_and_publishes(store: PersonalDataStore, schemas):
    store.append("conversation-1", [message("meet at noon")])
    store.erase("messaging", "u1")
    event = store.read_stream("conversation-1")[0]
    assert schemas.decode(event).data["text"] == ERASED
    assert schemas.publish(event)["data"]["text"] == ERASED


def test_a_kept_published_envelope_is_scrubbed_like_the_log(store: PersonalDataStore, schemas):
    store.append("conversation-1", [message("meet at noon")])
    envelope = schemas.publish(store.read_stream("conversation-1")[0])
    assert envelope["data"]["text"] == "meet at noon"
    assert schemas.erase_published(envelope, "u2") == envelope
    store.erase("messaging", "u1")
    assert schemas.erase_published(envelope, "u1") == schemas.publish(
        store.read_stream("conversation-1")[0]
    )


def test_what_a_consumer_learned_of_a_person_is_scrubbed(tmp_path, schemas: EventRegistry):
    from shared.database import Database, create_schema
    from shared.facts import Facts, facts_metadata
    from shared.sql import create_sql_engine

    engine = create_sql_engine(f"sqlite:///{tmp_path / 'facts.sqlite'}")
    create_schema(engine, facts_metadata)
    facts = Facts(Database(engine), "contracts", schemas=schemas, wait_seconds=0)
    store = PersonalDataStore(
        SqlEventStore(f"sqlite:///{tmp_path / 'events.sqlite'}"), MemoryKeyring(), schemas
    )
    store.append("conversation-1", [message("meet at noon"), message("ok", "u2")])
    for event in store.read_stream("conversation-1"):
        envelope = schemas.publish(event)
        assert envelope is not None
        facts.learn(envelope)
    assert facts.erase("u1") == 1
    assert facts.erase("u1") == 0  # once is enough
    assert [e.data["text"] for e in facts.events("messaging", "1")] == [ERASED, "ok"]


def test_a_text_that_only_looks_sealed_reads_as_erased_and_stops_no_reader(
    store: PersonalDataStore,
):
    """A user may type anything, a sealed-looking ``pii:1:...`` included: it
    garbles only their own text, never stops a reader (the relay would halt)."""
    store.append("conversation-1", [message("first")])  # the sender has a key now
    store.append("conversation-1", [message("pii:1:x"), message("pii:1:AAAA"), message("ok")])
    texts = [e.data["text"] for e in store.read_stream("conversation-1")]
    assert texts == ["first", ERASED, ERASED, "ok"]
    assert [e.data["text"] for e in store.read_all()] == texts
