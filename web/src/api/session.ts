/** The signed-in person's tokens. They live in sessionStorage: gone when the
 * tab closes, never sent anywhere but the API in the Authorization header. */

export interface Tokens {
  access_token: string;
  refresh_token: string;
  expires_at: number; // ms since the epoch
  user_id: string;
  roles: string[];
  email_verified: boolean;
}

const KEY = "marketplace.session";
type Listener = (tokens: Tokens | null) => void;
const listeners = new Set<Listener>();

export function loadTokens(): Tokens | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Tokens) : null;
  } catch {
    return null;
  }
}

export function saveTokens(tokens: Tokens | null): void {
  if (tokens) sessionStorage.setItem(KEY, JSON.stringify(tokens));
  else sessionStorage.removeItem(KEY);
  for (const listener of listeners) listener(tokens);
}

export function onTokens(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export interface TokenAnswer {
  access_token: string;
  refresh_token: string;
  expires_in: number;
  user_id: string;
  roles: string[];
  email_verified?: boolean;
}

export function fromAnswer(answer: TokenAnswer, now = Date.now()): Tokens {
  return {
    access_token: answer.access_token,
    refresh_token: answer.refresh_token,
    expires_at: now + answer.expires_in * 1000,
    user_id: answer.user_id,
    roles: answer.roles,
    email_verified: answer.email_verified ?? false,
  };
}

/** Refresh this long before the access token expires. */
export const REFRESH_MARGIN_MS = 60_000;

export function needsRefresh(tokens: Tokens, now = Date.now()): boolean {
  return tokens.expires_at - now < REFRESH_MARGIN_MS;
}
