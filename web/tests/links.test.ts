import { describe, expect, it } from "vitest";
import { safeLink } from "../src/lib/links";

describe("safeLink", () => {
  it("keeps web addresses", () => {
    expect(safeLink("https://example.com/work")).toBe("https://example.com/work");
    expect(safeLink("http://example.com")).toBe("http://example.com/");
  });

  it("refuses script, data and relative addresses", () => {
    expect(safeLink("javascript:alert(1)")).toBeNull();
    expect(safeLink("JavaScript:alert(1)")).toBeNull();
    expect(safeLink("data:text/html,<b>x</b>")).toBeNull();
    expect(safeLink("/api/v1/me")).toBeNull();
    expect(safeLink("not a url")).toBeNull();
  });
});
