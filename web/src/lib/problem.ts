/** The API's errors are RFC 7807 problem documents; marshmallow's field errors
 * ride in `errors`, nested as the body is (`budget.amount`, `milestones.0.title`). */

export interface Problem {
  status: number;
  code: string;
  title: string;
  detail?: string;
  errors?: Record<string, unknown>;
  reason?: string;
  [extension: string]: unknown;
}

export type FieldErrors = Record<string, string[]>;

export class ApiError extends Error {
  constructor(
    readonly problem: Problem,
    readonly retryable: boolean,
  ) {
    super(problem.detail ?? problem.title);
    this.name = "ApiError";
  }

  get fieldErrors(): FieldErrors {
    return flattenFields(this.problem.errors);
  }
}

/** `{budget: {amount: ["..."]}}` as `{"budget.amount": ["..."]}`. */
export function flattenFields(fields: unknown, prefix = ""): FieldErrors {
  const out: FieldErrors = {};
  if (Array.isArray(fields) && fields.every((m) => typeof m === "string")) {
    out[prefix || "_"] = fields as string[];
    return out;
  }
  if (fields && typeof fields === "object") {
    for (const [key, value] of Object.entries(fields)) {
      Object.assign(out, flattenFields(value, prefix ? `${prefix}.${key}` : key));
    }
  } else if (typeof fields === "string") {
    out[prefix || "_"] = [fields];
  }
  return out;
}

/** A problem from whatever came back: a problem document, another body, or none. */
export function toProblem(status: number, body: unknown): Problem {
  if (body && typeof body === "object" && "title" in body) {
    return { status, code: String((body as Problem).code ?? status), ...(body as object) } as Problem;
  }
  return {
    status,
    code: status === 0 ? "network_error" : `http_${status}`,
    title: status === 0 ? "Cannot reach the marketplace" : "Something went wrong",
    detail:
      status === 0
        ? "Check your connection and try again."
        : `The server answered ${status}. Try again in a moment.`,
  };
}

/** Worth sending again with the same Idempotency-Key: nothing was decided
 * (the network failed, the server failed, or the first attempt still runs). */
export function isRetryable(problem: Pick<Problem, "status" | "reason">): boolean {
  const { status, reason } = problem;
  return status === 0 || status >= 500 || status === 429 || reason === "idempotency_key_in_progress";
}
