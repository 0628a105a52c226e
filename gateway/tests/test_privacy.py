"""The export: the buyer's card reference stays the buyer's."""

from __future__ import annotations

from gateway.routes.privacy import _seller_side


def test_a_sellers_export_holds_no_card_of_the_buyer_and_the_buyers_does():
    hourly = {"rate": 6_000, "payment_method": "pm_card_visa"}
    found = {
        "contracts": [
            {"contract_id": "c1", "buyer_id": "b", "state": {"hourly": dict(hourly)}},
        ],
        "offer_versions": [{"contract_id": "c1", "terms": {"hourly": dict(hourly)}}],
        "contract_history": [{"contract_id": "c1", "data": [{"payment_method": "pm_x"}]}],
    }
    sellers = _seller_side({k: list(v) for k, v in found.items()}, "s")
    assert "payment_method" not in str(sellers)
    assert sellers["offer_versions"][0]["terms"]["hourly"]["rate"] == 6_000
    buyers = _seller_side({k: list(v) for k, v in found.items()}, "b")
    assert str(buyers).count("payment_method") == 3
