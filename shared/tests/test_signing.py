"""Signatures and actor assertions, without a broker."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.actor_assertion import Actor, UnverifiedActor, sign_assertion, verify_assertion
from shared.config import load_settings
from shared.signing import Signer, Verifier, new_key_pair, signer, verifier


def new_signer() -> Signer:
    return Signer(Ed25519PrivateKey.generate())


def test_a_signature_verifies_only_the_bytes_it_signed_with_a_known_key():
    one, other = new_signer(), new_signer()
    keys = Verifier([one.key.public_key()])
    signature = one.sign(b'{"amount": 100}')
    assert keys.verifies(b'{"amount": 100}', signature, one.key_id)
    assert not keys.verifies(b'{"amount": 900}', signature, one.key_id)
    assert not keys.verifies(b'{"amount": 100}', other.sign(b'{"amount": 100}'), other.key_id)
    assert not keys.verifies(b'{"amount": 100}', signature, other.key_id)
    assert not keys.verifies(b'{"amount": 100}', "not base64!", one.key_id)


def test_a_rotated_key_verifies_alongside_the_old_one_until_it_is_dropped():
    old, new = new_signer(), new_signer()
    both = Verifier([old.key.public_key(), new.key.public_key()])
    assert both.verifies(b"x", old.sign(b"x"), old.key_id)
    assert both.verifies(b"x", new.sign(b"x"), new.key_id)
    assert not Verifier([new.key.public_key()]).verifies(b"x", old.sign(b"x"), old.key_id)


def test_configured_keys_pair_up_and_production_refuses_to_invent_them():
    signing, verify = new_key_pair()
    config = replace(load_settings(), event_signing_key=signing, event_verify_keys=(verify,))
    made = signer("event", config)
    assert verifier("event", config).verifies(b"x", made.sign(b"x"), made.key_id)
    production = replace(load_settings(), environment="production")
    with pytest.raises(RuntimeError, match="EVENT_VERIFY_KEYS"):
        verifier("event", production)
    with pytest.raises(RuntimeError, match="ACTOR_SIGNING_KEY"):
        signer("actor", production)


def test_an_assertion_names_its_actor_roles_key_and_one_call():
    gateway = new_signer()
    keys = Verifier([gateway.key.public_key()])
    actor = Actor("user-1", ("buyer", "admin"), "user-1:key-7")
    token = sign_assertion(gateway, actor, "escrow.fund")
    assert verify_assertion(keys, token, "escrow.fund") == actor
    with pytest.raises(UnverifiedActor, match=r"not escrow\.release"):
        verify_assertion(keys, token, "escrow.release")
    stale = sign_assertion(gateway, actor, "escrow.fund", now=time.time() - 120)
    with pytest.raises(UnverifiedActor, match="expired"):
        verify_assertion(keys, stale, "escrow.fund")
    with pytest.raises(UnverifiedActor, match="unknown key"):
        verify_assertion(keys, sign_assertion(new_signer(), actor, "escrow.fund"), "escrow.fund")
    with pytest.raises(UnverifiedActor, match="no actor assertion"):
        verify_assertion(keys, None, "escrow.fund")
    with pytest.raises(UnverifiedActor):
        verify_assertion(keys, token[:-4] + "AAAA", "escrow.fund")
