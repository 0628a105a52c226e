/** The typed API client: openapi-fetch over the types openapi-typescript
 * generates from the gateway's OpenAPI document (`npm run gen:api`), so a
 * changed API fails `tsc`, not the person using the app. */

import createClient, { type Middleware } from "openapi-fetch";
import { Attempt } from "../lib/attempt";
import { ApiError, toProblem } from "../lib/problem";
import type { components, paths } from "./schema";
import { fromAnswer, loadTokens, needsRefresh, saveTokens } from "./session";

export type Schemas = components["schemas"];

export const api = createClient<paths>({ baseUrl: "" });

let refreshing: Promise<string | null> | null = null;

/** A valid access token, refreshed first when it is about to expire (one
 * refresh at a time, however many requests wait for it). */
export async function accessToken(): Promise<string | null> {
  const tokens = loadTokens();
  if (!tokens) return null;
  if (!needsRefresh(tokens)) return tokens.access_token;
  refreshing ??= (async () => {
    try {
      const { data } = await api.POST("/api/v1/auth/refresh", {
        body: { refresh_token: tokens.refresh_token },
      });
      if (!data) {
        saveTokens(null); // the session ended (logged out elsewhere, idle too long)
        return null;
      }
      const next = fromAnswer(data);
      saveTokens(next);
      return next.access_token;
    } catch {
      return tokens.access_token; // offline: let the request itself fail and say so
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

const authorize: Middleware = {
  async onRequest({ request, schemaPath }) {
    if (schemaPath.startsWith("/api/v1/auth/")) return request;
    const token = await accessToken();
    if (token) request.headers.set("Authorization", `Bearer ${token}`);
    return request;
  },
  onResponse({ response, schemaPath }) {
    // A 401 on an authenticated route: the session is over, sign in again.
    if (response.status === 401 && !schemaPath.startsWith("/api/v1/auth/") && loadTokens()) {
      saveTokens(null);
    }
    return response;
  },
};
api.use(authorize);

type Answer<T> = { data?: T; error?: unknown; response: Response };

/** The answer's body, or an ApiError carrying its problem document. */
export async function unwrap<T>(call: Promise<Answer<T>>): Promise<T> {
  let answer: Answer<T>;
  try {
    answer = await call;
  } catch {
    const problem = toProblem(0, null);
    throw new ApiError(problem, true);
  }
  if (answer.response.ok) return answer.data as T;
  const problem = toProblem(answer.response.status, answer.error);
  throw new ApiError(problem, false);
}

/** A command: sent with the attempt's Idempotency-Key, which stays the same
 * on every retry until an answer settles it. An answer with no body (204) is
 * null, so a caller tells it from a failure (undefined, in `useCommand`). */
export async function command<T>(
  attempt: Attempt,
  send: (headers: { "Idempotency-Key": string }) => Promise<Answer<T>>,
): Promise<T | null> {
  try {
    const result = await unwrap(send({ "Idempotency-Key": attempt.key() }));
    attempt.settle({ ok: true });
    return result ?? null;
  } catch (error) {
    if (error instanceof ApiError) attempt.settle({ ok: false, problem: error.problem });
    throw error;
  }
}
