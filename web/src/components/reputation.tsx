import type { Schemas } from "../api/client";

type Summary = Schemas["ReputationSummary"];

function isSummary(value: unknown): value is Summary {
  return !!value && typeof value === "object" && "contracts" in value;
}

/** A seller's standing in words: score, reviews, job success. */
export function ReputationLine({ reputation }: { reputation: unknown }) {
  if (!isSummary(reputation) || reputation.contracts === 0) {
    return <span className="meta">New on the marketplace</span>;
  }
  const parts = [
    reputation.score != null ? `★ ${reputation.score.toFixed(1)}` : null,
    `${reputation.reviews} review${reputation.reviews === 1 ? "" : "s"}`,
    `${reputation.contracts} contract${reputation.contracts === 1 ? "" : "s"}`,
    reputation.job_success != null ? `${reputation.job_success}% job success` : null,
  ].filter(Boolean);
  return <span className="meta">{parts.join(" · ")}</span>;
}
