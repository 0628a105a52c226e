/** Money as the API has it: an integer of the currency's minor units. Nothing
 * here goes through a float: amounts are split and joined as digits. */

export interface Money {
  amount: number;
  currency: string;
}

/** Whether an API value that may be null or `{}` is an amount of money. */
export function isMoney(value: unknown): value is Money {
  return !!value && typeof value === "object" && "amount" in value && "currency" in value;
}

/** Minor-unit digits of an ISO 4217 currency (JPY 0, EUR 2, BHD 3), as Intl knows them. */
export function minorDigits(currency: string): number {
  return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions()
    .maximumFractionDigits ?? 2;
}

/** 12345 EUR minor units as the exact decimal "123.45". */
export function toDecimal(amount: number, currency: string): string {
  if (!Number.isSafeInteger(amount)) throw new RangeError(`not an amount of minor units: ${amount}`);
  const digits = minorDigits(currency);
  const sign = amount < 0 ? "-" : "";
  const text = Math.abs(amount).toString().padStart(digits + 1, "0");
  if (digits === 0) return sign + text;
  return `${sign}${text.slice(0, -digits)}.${text.slice(-digits)}`;
}

/** "€1,234.50": formatted from the decimal string, which Intl reads exactly. */
export function formatMoney(money: Money, locale?: string): string {
  const format = new Intl.NumberFormat(locale, { style: "currency", currency: money.currency });
  return format.format(toDecimal(money.amount, money.currency) as Intl.StringNumericLiteral);
}

export type Parsed = { ok: true; amount: number } | { ok: false; error: string };

/** What a person types ("1,250.5", "1250") as minor units, or why it is not an amount. */
export function parseMoney(text: string, currency: string): Parsed {
  const digits = minorDigits(currency);
  const cleaned = text.trim().replace(/[\s,_]/g, "");
  const match = /^(\d+)(?:\.(\d*))?$/.exec(cleaned);
  if (!match) return { ok: false, error: "Enter an amount such as 1250 or 1250.50." };
  const [, whole = "", fraction = ""] = match;
  if (fraction.length > digits) {
    return {
      ok: false,
      error: digits === 0 ? `${currency} has no cents.` : `At most ${digits} decimals in ${currency}.`,
    };
  }
  const minor = Number(whole + fraction.padEnd(digits, "0"));
  if (!Number.isSafeInteger(minor)) return { ok: false, error: "That amount is too large." };
  return { ok: true, amount: minor };
}
