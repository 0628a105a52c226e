/** A web address a person typed, as a link, or null: only http(s) becomes a
 * link (a `javascript:` or `data:` URL in a portfolio is the seller's text). */
export function safeLink(url: string): string | null {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
  } catch {
    return null;
  }
}
