/** One thing a person asked for (post this project, fund these milestones),
 * however many times the browser has to send it: every attempt carries the
 * same Idempotency-Key, so a retry after a lost answer is not a second
 * payment. A new key comes only once an answer decided the matter. */

import { isRetryable, type Problem } from "./problem";

export class Attempt {
  private current: string | null = null;

  constructor(private readonly newKey: () => string = () => crypto.randomUUID()) {}

  /** The key to send now: the last one if it is still undecided. */
  key(): string {
    this.current ??= this.newKey();
    return this.current;
  }

  /** Record how the attempt ended: a success or a definite refusal frees the key. */
  settle(outcome: { ok: true } | { ok: false; problem: Pick<Problem, "status" | "reason"> }): void {
    if (outcome.ok || !isRetryable(outcome.problem)) this.current = null;
  }
}
