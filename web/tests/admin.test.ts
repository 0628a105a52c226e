import { describe, expect, it } from "vitest";
import { actorName, age } from "../src/pages/admin";

const parties = { buyer_id: "b-1", seller_id: "s-1" };

describe("the dispute desk", () => {
  it("names who acted: a party, the marketplace's services, or an administrator", () => {
    expect(actorName("b-1", parties)).toBe("the buyer");
    expect(actorName("s-1", parties)).toBe("the seller");
    expect(actorName("system:escrow", parties)).toBe("the marketplace");
    expect(actorName(null, parties)).toBe("the marketplace");
    expect(actorName("a-9", parties)).toBe("an administrator");
  });

  it("says how long a dispute has waited", () => {
    expect(age(5)).toBe("1 min");
    expect(age(90 * 60)).toBe("2 h");
    expect(age(3 * 86_400)).toBe("3 d");
  });
});
