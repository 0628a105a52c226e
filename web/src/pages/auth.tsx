/** Signing up, verifying the address, signing in (with a second factor
 * when the account has one) and out. */

import { useEffect, useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { accessToken, api } from "../api/client";
import { fromAnswer, loadTokens, saveTokens, type TokenAnswer } from "../api/session";
import { Field, ProblemNote, useCommand } from "../components/ui";
import { ApiError } from "../lib/problem";

type Role = "buyer" | "seller";

export function SignUpPage() {
  const { run, pending, error, fieldErrors } = useCommand();
  const [done, setDone] = useState<string | null>(null);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const roles = form.getAll("roles").map(String) as Role[];
    const email = String(form.get("email"));
    const user = await run((headers) =>
      api.POST("/api/v1/auth/register", {
        body: { email, password: String(form.get("password")), roles },
        headers,
      }),
    );
    if (user) setDone(user.email);
  }

  if (done) {
    return (
      <section className="card narrow">
        <h1>Check your mail</h1>
        <p>
          We sent a link to <strong>{done}</strong>. Open it to verify your address, then{" "}
          <Link to="/login">sign in</Link>.
        </p>
      </section>
    );
  }
  return (
    <section className="card narrow">
      <h1>Sign up</h1>
      <form onSubmit={submit} noValidate>
        <Field label="Email" name="email" errors={fieldErrors}>
          {(p) => <input {...p} type="email" autoComplete="email" required />}
        </Field>
        <Field
          label="Password"
          name="password"
          errors={fieldErrors}
          hint="At least 12 characters; a passphrase is best."
        >
          {(p) => <input {...p} type="password" autoComplete="new-password" required />}
        </Field>
        <fieldset className="field">
          <legend>I want to</legend>
          <label className="check">
            <input type="checkbox" name="roles" value="buyer" defaultChecked /> hire (buyer)
          </label>
          <label className="check">
            <input type="checkbox" name="roles" value="seller" /> work (seller)
          </label>
          {fieldErrors.roles ? <p className="field-errors">{fieldErrors.roles.join(" ")}</p> : null}
        </fieldset>
        <ProblemNote error={error} />
        <button type="submit" disabled={pending}>
          {pending ? "Signing up…" : "Sign up"}
        </button>
      </form>
      <p>
        Have an account? <Link to="/login">Sign in</Link>
      </p>
    </section>
  );
}

export function VerifyEmailPage() {
  const [params] = useSearchParams();
  const token = params.get("token") ?? "";
  const { run, error } = useCommand();
  const [verified, setVerified] = useState(false);
  useEffect(() => {
    if (!token) return;
    void run((headers) => api.POST("/api/v1/auth/verify-email", { body: { token }, headers })).then(
      async (answer) => {
        if (!answer) return;
        setVerified(true);
        const tokens = loadTokens();
        if (tokens) {
          saveTokens({ ...tokens, expires_at: 0 }); // a fresh token says "verified"
          await accessToken();
        }
      },
    );
  }, [token, run]);
  return (
    <section className="card narrow">
      <h1>Verify your email</h1>
      {!token ? <p>This link has no token: open the link from the mail again.</p> : null}
      {verified ? (
        <p role="status">
          Your address is verified. <Link to={loadTokens() ? "/" : "/login"}>Continue</Link>
        </p>
      ) : error ? (
        <ProblemNote error={error} />
      ) : token ? (
        <p role="status">Verifying…</p>
      ) : null}
    </section>
  );
}

export function LogInPage() {
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const { run, pending, error, fieldErrors, clear } = useCommand();
  const [challenge, setChallenge] = useState<string | null>(null);

  function signedIn(answer: TokenAnswer) {
    saveTokens(fromAnswer(answer));
    navigate(params.get("next") ?? "/", { replace: true });
  }

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const answer = await run(() =>
      api.POST("/api/v1/auth/login", {
        body: { email: String(form.get("email")), password: String(form.get("password")) },
      }),
    );
    if (answer) signedIn(answer);
  }

  // The password was right and the account has a second factor: ask for it.
  useEffect(() => {
    const asked = error instanceof ApiError && error.problem.reason === "two_factor_required" ? error.problem.challenge : null;
    if (typeof asked === "string") setChallenge(asked);
  }, [error]);
  const restart = () => {
    clear();
    setChallenge(null);
  };
  if (challenge) return <SecondFactorStep challenge={challenge} onSignedIn={signedIn} onRestart={restart} />;

  return (
    <section className="card narrow">
      <h1>Sign in</h1>
      <form onSubmit={submit} noValidate>
        <Field label="Email" name="email" errors={fieldErrors}>
          {(p) => <input {...p} type="email" autoComplete="username" required />}
        </Field>
        <Field label="Password" name="password" errors={fieldErrors}>
          {(p) => <input {...p} type="password" autoComplete="current-password" required />}
        </Field>
        <ProblemNote error={error} />
        <button type="submit" disabled={pending}>
          {pending ? "Signing in…" : "Sign in"}
        </button>
      </form>
      <p>
        New here? <Link to="/signup">Sign up</Link> · <Link to="/forgot-password">Forgot your password?</Link>
      </p>
    </section>
  );
}

function SecondFactorStep(props: { challenge: string; onSignedIn: (answer: TokenAnswer) => void; onRestart: () => void }) {
  const { run, pending, error, fieldErrors } = useCommand();
  const [recovery, setRecovery] = useState(false);
  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const value = String(new FormData(event.currentTarget).get("code") ?? "").replace(/\s/g, "");
    const answer = await run(() =>
      api.POST("/api/v1/auth/login/two-factor", {
        body: recovery ? { challenge: props.challenge, recovery_code: value } : { challenge: props.challenge, code: value },
      }),
    );
    if (answer) props.onSignedIn(answer);
  }
  const expired = error instanceof ApiError && error.problem.status === 400;
  return (
    <section className="card narrow">
      <h1>Two-factor sign-in</h1>
      <form onSubmit={submit} noValidate>
        <Field
          label={recovery ? "Recovery code" : "Code from your authenticator app"}
          name={recovery ? "recovery_code" : "code"}
          errors={fieldErrors}
        >
          {(p) => (
            <input
              {...p}
              name="code"
              autoComplete="one-time-code"
              inputMode={recovery ? "text" : "numeric"}
              required
              autoFocus
            />
          )}
        </Field>
        <ProblemNote error={error} />
        <button type="submit" disabled={pending}>
          {pending ? "Checking…" : "Sign in"}
        </button>
      </form>
      <p>
        <button type="button" className="link" onClick={() => setRecovery((r) => !r)}>
          {recovery ? "Use the app's code instead" : "Use a recovery code instead"}
        </button>
        {expired ? (
          <>
            {" · "}
            <button type="button" className="link" onClick={props.onRestart}>
              Start again with your password
            </button>
          </>
        ) : null}
      </p>
    </section>
  );
}

export async function logOut(): Promise<void> {
  const tokens = loadTokens();
  saveTokens(null);
  if (tokens) {
    await api
      .POST("/api/v1/auth/logout", {
        body: { refresh_token: tokens.refresh_token },
        headers: { Authorization: `Bearer ${tokens.access_token}` },
      })
      .catch(() => undefined);
  }
}

export function ForgotPasswordPage() {
  const { run, pending, error, fieldErrors } = useCommand();
  const [sent, setSent] = useState(false);
  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const email = String(new FormData(event.currentTarget).get("email"));
    const answer = await run((headers) => api.POST("/api/v1/auth/password-reset", { body: { email }, headers }));
    if (answer !== undefined) setSent(true);
  }
  return (
    <section className="card narrow">
      <h1>Reset your password</h1>
      {sent ? (
        <p role="status">If an account has this address, a link to choose a new password is on its way.</p>
      ) : (
        <form onSubmit={submit} noValidate>
          <Field label="Email" name="email" errors={fieldErrors}>
            {(p) => <input {...p} type="email" autoComplete="email" required />}
          </Field>
          <ProblemNote error={error} />
          <button type="submit" disabled={pending}>
            Send the link
          </button>
        </form>
      )}
    </section>
  );
}

export function ResetPasswordPage() {
  const [params] = useSearchParams();
  const token = params.get("token") ?? "";
  const { run, pending, error, fieldErrors } = useCommand();
  const [done, setDone] = useState(false);
  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const password = String(new FormData(event.currentTarget).get("password"));
    const answer = await run((headers) =>
      api.POST("/api/v1/auth/password-reset/confirm", { body: { token, password }, headers }),
    );
    if (answer !== undefined) setDone(true);
  }
  return (
    <section className="card narrow">
      <h1>Choose a new password</h1>
      {done ? (
        <p role="status">
          Your password is changed, and every session signed out. <Link to="/login">Sign in</Link>
        </p>
      ) : (
        <form onSubmit={submit} noValidate>
          <Field label="New password" name="password" errors={fieldErrors} hint="At least 12 characters.">
            {(p) => <input {...p} type="password" autoComplete="new-password" required />}
          </Field>
          <ProblemNote error={error} />
          <button type="submit" disabled={pending || !token}>
            Change password
          </button>
        </form>
      )}
    </section>
  );
}
