"""The reputation formula, version 1: published, so anyone can recompute a
user's reputation from exported ``feedback-`` events (see docs/reputation.md).

Per user and role (as a seller, as a buyer), from the contracts that ended
with them in that role (``FeedbackWindowOpened``) and the reviews of them that
were revealed (``ReviewSubmitted`` followed by ``ReviewsRevealed``):

* **score**: a Bayesian average of the overall ratings, starting from a prior
  of ``PRIOR_MEAN`` worth ``PRIOR_WEIGHT`` reviews. Each review weighs
  ``(1 + log10(1 + value / 100)) * 0.5 ** (age_days / HALF_LIFE_DAYS)``:
  ``value`` is the contract's total in minor units, ``age_days`` how long
  before the user's most recently ended reviewed contract this one ended. Age
  is measured from the user's own newest contract, not from today, so the
  score changes only when an event arrives and a recomputation gives the
  same number at any time. Rounded to 2 decimals; none without reviews.
* **reviews**: how many revealed reviews.
* **completion_rate**: completed / ended contracts, in percent.
* **on_time_rate**: completed on time / completed, in percent.
* **rehire_rate**: counterparts with two or more contracts / counterparts, in percent.
* **job_success**: ``40% positive + 30% completion + 30% on time`` in percent,
  where positive is the share of revealed reviews rated 4 or 5 (the completion
  rate when there are none yet).

Percentages are rounded to whole numbers (Python's ``round``, half to even).
Changing anything here means a new ``FORMULA_VERSION``, which rebuilds every
reputation from the log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

FORMULA_VERSION = 1
PRIOR_MEAN = 3.5
PRIOR_WEIGHT = 2.0
HALF_LIFE_DAYS = 365.0


@dataclass(frozen=True)
class EndedContract:
    contract_id: str
    counterpart_id: str
    outcome: str  # completed or cancelled
    total_amount: int
    on_time: bool
    ended_at: datetime


@dataclass(frozen=True)
class Review:
    contract_id: str
    rating: int


def _pct(part: int, whole: int) -> int | None:
    return None if whole == 0 else round(100 * part / whole)


def reputation(contracts: list[EndedContract], reviews: list[Review]) -> dict[str, Any]:
    ended = {c.contract_id: c for c in contracts}
    rated = sorted((r for r in reviews if r.contract_id in ended), key=lambda r: r.contract_id)
    score = None
    if rated:
        newest = max(ended[r.contract_id].ended_at for r in rated)
        weighted, weights = PRIOR_MEAN * PRIOR_WEIGHT, PRIOR_WEIGHT
        for r in rated:
            c = ended[r.contract_id]
            age_days = (newest - c.ended_at).total_seconds() / 86_400
            weight = (1 + math.log10(1 + c.total_amount / 100)) * 0.5 ** (age_days / HALF_LIFE_DAYS)
            weighted += weight * r.rating
            weights += weight
        score = round(weighted / weights, 2)
    completed = [c for c in contracts if c.outcome == "completed"]
    per_counterpart: dict[str, int] = {}
    for c in contracts:
        per_counterpart[c.counterpart_id] = per_counterpart.get(c.counterpart_id, 0) + 1
    completion = _pct(len(completed), len(contracts))
    on_time = _pct(sum(1 for c in completed if c.on_time), len(completed))
    positive = _pct(sum(1 for r in rated if r.rating >= 4), len(rated))
    job_success = None
    if contracts:
        positive_share = positive if positive is not None else completion or 0
        job_success = round(0.4 * positive_share + 0.3 * (completion or 0) + 0.3 * (on_time or 0))
    return {
        "formula_version": FORMULA_VERSION,
        "score": score,
        "reviews": len(rated),
        "contracts": len(contracts),
        "completion_rate": completion,
        "on_time_rate": on_time,
        "rehire_rate": _pct(
            sum(1 for n in per_counterpart.values() if n >= 2), len(per_counterpart)
        ),
        "job_success": job_success,
    }
