import { describe, expect, it } from "vitest";
import { fromAnswer, needsRefresh, REFRESH_MARGIN_MS } from "../src/api/session";

describe("session tokens", () => {
  const answer = { access_token: "a", refresh_token: "r", expires_in: 900, user_id: "u", roles: ["buyer"] };

  it("knows when the access token expires and refreshes a minute before", () => {
    const tokens = fromAnswer(answer, 1_000_000);
    expect(tokens.expires_at).toBe(1_000_000 + 900_000);
    expect(tokens.email_verified).toBe(false);
    expect(needsRefresh(tokens, 1_000_000)).toBe(false);
    expect(needsRefresh(tokens, tokens.expires_at - REFRESH_MARGIN_MS + 1)).toBe(true);
  });
});
