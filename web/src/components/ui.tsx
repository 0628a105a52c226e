/** The few building blocks every page uses: labelled fields with their
 * errors, the API's problems shown plainly, loading and empty states, money. */

import { useCallback, useEffect, useId, useRef, useState, type ReactNode } from "react";
import { command } from "../api/client";
import { Attempt } from "../lib/attempt";
import { formatMoney, type Money } from "../lib/money";
import { ApiError, toProblem, type FieldErrors } from "../lib/problem";

export function MoneyText({ money }: { money: Money }) {
  return <span className="money">{formatMoney(money)}</span>;
}

/** A table wider than a phone scrolls on its own; a keyboard can reach it. */
export function ScrollTable({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="scroll" role="region" aria-label={label} tabIndex={0}>
      <table>{children}</table>
    </div>
  );
}

/** A list of skills as tags; nothing when there are none. */
export function SkillTags({ skills }: { skills: readonly string[] | undefined }) {
  if (!skills?.length) return null;
  return (
    <ul className="tags" aria-label="Skills">
      {skills.map((s) => (
        <li key={s}>{s}</li>
      ))}
    </ul>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="loading" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="empty">{children}</p>;
}

/** A problem the API answered, in words; field errors appear by their fields. */
export function ProblemNote({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  if (!error) return null;
  const problem = error instanceof ApiError ? error.problem : toProblem(0, null);
  const retryable = error instanceof ApiError && error.retryable;
  return (
    <div className="problem" role="alert">
      <strong>{problem.title}</strong>
      {problem.detail ? <span> {problem.detail}</span> : null}
      {retryable && onRetry ? (
        <button type="button" className="link" onClick={onRetry}>
          Try again
        </button>
      ) : null}
    </div>
  );
}

interface FieldProps {
  label: string;
  name: string;
  errors?: FieldErrors;
  hint?: string;
  children: (props: {
    id: string;
    name: string;
    "aria-invalid": boolean;
    "aria-describedby"?: string;
  }) => ReactNode;
}

/** A label, its control and the errors the API gave for `name`. */
export function Field({ label, name, errors, hint, children }: FieldProps) {
  const id = useId();
  const messages = errors?.[name] ?? [];
  const describedBy = [hint ? `${id}-hint` : "", messages.length ? `${id}-errors` : ""]
    .filter(Boolean)
    .join(" ");
  return (
    <div className={`field${messages.length ? " invalid" : ""}`}>
      <label htmlFor={id}>{label}</label>
      {hint ? (
        <small id={`${id}-hint`} className="hint">
          {hint}
        </small>
      ) : null}
      {children({
        id,
        name,
        "aria-invalid": messages.length > 0,
        ...(describedBy ? { "aria-describedby": describedBy } : {}),
      })}
      {messages.length ? (
        <ul id={`${id}-errors`} className="field-errors">
          {messages.map((m) => (
            <li key={m}>{m}</li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

function sameDeps(a: unknown[], b: unknown[]): boolean {
  return a.length === b.length && a.every((value, i) => Object.is(value, b[i]));
}

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/** What `load` answers, reloaded when `deps` change or on `reload()`; the
 * last answer stays while the next loads. A failed reload keeps it (beside
 * its error); a failed load of something else (new `deps`) drops it. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({
    loading: true,
  });
  const [tick, setTick] = useState(0);
  const loader = useRef(load);
  loader.current = load;
  const shownFor = useRef<unknown[] | null>(null);
  useEffect(() => {
    let live = true;
    const same = shownFor.current !== null && sameDeps(shownFor.current, deps);
    shownFor.current = deps;
    setState((s) => ({ ...s, loading: true }));
    loader.current().then(
      (data) => live && setState({ data, loading: false }),
      (error: unknown) => live && setState((s) => ({ data: same ? s.data : undefined, error, loading: false })),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data: state.data, error: state.error, loading: state.loading, reload };
}

/** One form's command: pending while it runs, its problem and field errors
 * after, and one Idempotency-Key for all of its attempts until one is settled.
 * `run` answers the body, null for a success without one, undefined on failure. */
export function useCommand() {
  const attempt = useRef(new Attempt());
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = useCallback(
    async <T,>(
      send: (headers: { "Idempotency-Key": string }) => Promise<{
        data?: T;
        error?: unknown;
        response: Response;
      }>,
    ): Promise<T | null | undefined> => {
      setPending(true);
      setError(null);
      try {
        return await command(attempt.current, send);
      } catch (caught) {
        setError(caught);
        return undefined;
      } finally {
        setPending(false);
      }
    },
    [],
  );
  const fieldErrors = error instanceof ApiError ? error.fieldErrors : {};
  return { run, pending, error, fieldErrors, clear: () => setError(null) };
}
