import { describe, expect, it } from "vitest";
import { formatMoney, isMoney, minorDigits, parseMoney, toDecimal } from "../src/lib/money";

describe("money in minor units", () => {
  it("knows each currency's minor digits", () => {
    expect(minorDigits("EUR")).toBe(2);
    expect(minorDigits("JPY")).toBe(0);
    expect(minorDigits("BHD")).toBe(3);
  });

  it("writes minor units as an exact decimal, with no float in between", () => {
    expect(toDecimal(12345, "EUR")).toBe("123.45");
    expect(toDecimal(5, "USD")).toBe("0.05");
    expect(toDecimal(-250, "USD")).toBe("-2.50");
    expect(toDecimal(1500, "JPY")).toBe("1500");
    expect(toDecimal(1001, "BHD")).toBe("1.001");
    // the largest safe integer survives exactly (a float division would not)
    expect(toDecimal(9007199254740991, "USD")).toBe("90071992547409.91");
    expect(() => toDecimal(1.5, "USD")).toThrow(RangeError);
  });

  it("formats with the currency", () => {
    expect(formatMoney({ amount: 123450, currency: "USD" }, "en-US")).toBe("$1,234.50");
    expect(formatMoney({ amount: 1500, currency: "JPY" }, "en-US")).toBe("¥1,500");
    expect(formatMoney({ amount: 9007199254740991, currency: "USD" }, "en-US")).toBe("$90,071,992,547,409.91");
  });

  it("reads what a person types as minor units, exactly", () => {
    expect(parseMoney("1,250.50", "USD")).toEqual({ ok: true, amount: 125050 });
    expect(parseMoney(" 1250 ", "USD")).toEqual({ ok: true, amount: 125000 });
    expect(parseMoney("0.1", "USD")).toEqual({ ok: true, amount: 10 });
    expect(parseMoney("19.99", "EUR")).toEqual({ ok: true, amount: 1999 }); // 19.99 * 100 is 1998.9999… as a float
    expect(parseMoney("1500", "JPY")).toEqual({ ok: true, amount: 1500 });
  });

  it("refuses what is not an amount, saying why", () => {
    expect(parseMoney("12.345", "USD")).toEqual({ ok: false, error: "At most 2 decimals in USD." });
    expect(parseMoney("15.5", "JPY")).toEqual({ ok: false, error: "JPY has no cents." });
    expect(parseMoney("-5", "USD").ok).toBe(false);
    expect(parseMoney("abc", "USD").ok).toBe(false);
    expect(parseMoney("", "USD").ok).toBe(false);
    expect(parseMoney("99999999999999999", "USD")).toEqual({ ok: false, error: "That amount is too large." });
  });
});

describe("isMoney", () => {
  it("tells an amount from the API's null or empty object", () => {
    expect(isMoney({ amount: 8500, currency: "USD" })).toBe(true);
    expect(isMoney({})).toBe(false);
    expect(isMoney(null)).toBe(false);
  });
});
