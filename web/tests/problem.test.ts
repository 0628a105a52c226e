import { describe, expect, it } from "vitest";
import { Attempt } from "../src/lib/attempt";
import { ApiError, flattenFields, isRetryable, toProblem } from "../src/lib/problem";

describe("problem documents", () => {
  it("puts marshmallow's nested field errors by their dotted field names", () => {
    const problem = toProblem(422, {
      title: "Invalid input",
      status: 422,
      code: "invalid_input",
      errors: { title: ["Missing data for required field."], budget: { amount: ["Must be positive."] }, milestones: { 0: { title: ["Too long."] } } },
    });
    expect(new ApiError(problem, false).fieldErrors).toEqual({
      title: ["Missing data for required field."],
      "budget.amount": ["Must be positive."],
      "milestones.0.title": ["Too long."],
    });
    expect(flattenFields(undefined)).toEqual({});
  });

  it("says something useful when the answer is not a problem document", () => {
    expect(toProblem(0, null)).toMatchObject({ code: "network_error", title: "Cannot reach the marketplace" });
    expect(toProblem(502, "<html>")).toMatchObject({ status: 502, code: "http_502" });
    expect(toProblem(404, { title: "Not found", code: "not_found" }).code).toBe("not_found");
  });

  it("retries only what nothing decided", () => {
    expect(isRetryable({ status: 0 })).toBe(true);
    expect(isRetryable({ status: 503 })).toBe(true);
    expect(isRetryable({ status: 429 })).toBe(true);
    expect(isRetryable({ status: 409, reason: "idempotency_key_in_progress" })).toBe(true);
    expect(isRetryable({ status: 409, reason: "stale_state" })).toBe(false);
    expect(isRetryable({ status: 422 })).toBe(false);
  });
});

describe("an attempt's Idempotency-Key", () => {
  const keys = () => {
    let n = 0;
    return () => `key-${++n}`;
  };

  it("stays the same across retries until an answer settles it", () => {
    const attempt = new Attempt(keys());
    expect(attempt.key()).toBe("key-1");
    attempt.settle({ ok: false, problem: { status: 0 } }); // the network dropped the answer
    expect(attempt.key()).toBe("key-1");
    attempt.settle({ ok: false, problem: { status: 503 } });
    expect(attempt.key()).toBe("key-1");
    attempt.settle({ ok: true });
    expect(attempt.key()).toBe("key-2"); // the next payment is a new one
  });

  it("starts anew after a definite refusal, so corrected input is a new request", () => {
    const attempt = new Attempt(keys());
    attempt.key();
    attempt.settle({ ok: false, problem: { status: 422 } });
    expect(attempt.key()).toBe("key-2");
  });
});
