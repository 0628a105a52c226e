/** The signed-in person's security: two-factor sign-in (turn on with an
 * authenticator app, recovery codes, turn off), the password, and signing
 * out every session. */

import { useState, type FormEvent } from "react";
import { useNavigate } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { saveTokens } from "../api/session";
import { Field, Loading, ProblemNote, useCommand, useLoad } from "../components/ui";

export function AccountPage() {
  const status = useLoad(() => unwrap(api.GET("/api/v1/me/two-factor")), []);
  return (
    <section>
      <h1>Account and security</h1>
      <div className="card">
        <h2>Two-factor sign-in</h2>
        {status.loading && !status.data ? <Loading what="two-factor sign-in" /> : null}
        <ProblemNote error={status.error} onRetry={status.reload} />
        {status.data ? <TwoFactor status={status.data} onChanged={status.reload} /> : null}
      </div>
      <PasswordForm />
      <SignOutEverywhere />
    </section>
  );
}

function RecoveryCodes({ codes }: { codes: string[] }) {
  return (
    <div role="status">
      <p>
        <strong>Your recovery codes.</strong> Each signs you in once without the app. Keep them somewhere safe: they are shown
        only now.
      </p>
      <ul className="codes" aria-label="Recovery codes">
        {codes.map((c) => (
          <li key={c}>
            <code>{c}</code>
          </li>
        ))}
      </ul>
    </div>
  );
}

function TwoFactor({ status, onChanged }: { status: Schemas["TwoFactorStatusResponse"]; onChanged: () => void }) {
  const { run, pending, error, fieldErrors } = useCommand();
  const [setup, setSetup] = useState<Schemas["TwoFactorSetupResponse"] | null>(null);
  const [codes, setCodes] = useState<string[] | null>(null);

  async function start(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const current_password = String(new FormData(event.currentTarget).get("current_password"));
    const answer = await run((headers) => api.POST("/api/v1/me/two-factor", { body: { current_password }, headers }));
    if (answer) setSetup(answer);
  }
  async function confirm(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const code = String(new FormData(event.currentTarget).get("code")).replace(/\s/g, "");
    const answer = await run((headers) => api.POST("/api/v1/me/two-factor/confirm", { body: { code }, headers }));
    if (answer) {
      setSetup(null);
      setCodes(answer.recovery_codes);
      onChanged();
    }
  }
  async function renew(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const code = String(new FormData(event.currentTarget).get("code")).replace(/\s/g, "");
    const answer = await run((headers) => api.POST("/api/v1/me/two-factor/recovery-codes", { body: { code }, headers }));
    if (answer) {
      setCodes(answer.recovery_codes);
      onChanged();
    }
  }
  async function turnOff(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const body = {
      current_password: String(form.get("current_password")),
      code: String(form.get("code")).replace(/\s/g, ""),
    };
    const done = await run((headers) => api.DELETE("/api/v1/me/two-factor", { body, headers }));
    if (done !== undefined) onChanged();
  }

  if (codes) return <RecoveryCodes codes={codes} />;
  if (setup) {
    return (
      <>
        <p>
          Add this account to your authenticator app: open <a href={setup.otpauth_uri}>this link</a> on your phone, or type the key.
        </p>
        <p>
          Key: <code className="secret">{setup.secret}</code>
        </p>
        <form onSubmit={confirm} noValidate aria-label="Confirm two-factor sign-in">
          <Field label="Code from the app" name="code" errors={fieldErrors}>
            {(p) => <input {...p} autoComplete="one-time-code" inputMode="numeric" required />}
          </Field>
          <ProblemNote error={error} />
          <button type="submit" className="primary" disabled={pending}>
            Turn on two-factor sign-in
          </button>
        </form>
      </>
    );
  }
  if (!status.enabled) {
    return (
      <>
        <p>
          {status.required
            ? "Your role needs it: turn it on, then sign in again with a code."
            : "A code from an app on your phone, asked at each sign-in, keeps your account safe if your password leaks."}
        </p>
        <form onSubmit={start} noValidate aria-label="Start two-factor sign-in">
          <Field label="Current password" name="current_password" errors={fieldErrors}>
            {(p) => <input {...p} type="password" autoComplete="current-password" required />}
          </Field>
          <ProblemNote error={error} />
          <button type="submit" disabled={pending}>
            Set up an authenticator app
          </button>
        </form>
      </>
    );
  }
  return (
    <>
      <p role="status">
        Two-factor sign-in is on. {status.recovery_codes_left} recovery code{status.recovery_codes_left === 1 ? "" : "s"} left.
      </p>
      <ProblemNote error={error} />
      <form onSubmit={renew} noValidate aria-label="New recovery codes">
        <Field label="Code from the app" name="code" errors={fieldErrors}>
          {(p) => <input {...p} autoComplete="one-time-code" inputMode="numeric" required />}
        </Field>
        <button type="submit" disabled={pending}>
          New recovery codes
        </button>
      </form>
      {status.required ? (
        <p className="meta">Your role needs two-factor sign-in, so it stays on.</p>
      ) : (
        <form onSubmit={turnOff} noValidate aria-label="Turn off two-factor sign-in">
          <Field label="Current password" name="current_password" errors={fieldErrors}>
            {(p) => <input {...p} type="password" autoComplete="current-password" required />}
          </Field>
          <Field label="Code from the app to turn it off" name="code" errors={fieldErrors}>
            {(p) => <input {...p} autoComplete="one-time-code" inputMode="numeric" required />}
          </Field>
          <button type="submit" disabled={pending}>
            Turn off two-factor sign-in
          </button>
        </form>
      )}
    </>
  );
}

function PasswordForm() {
  const { run, pending, error, fieldErrors } = useCommand();
  const [changed, setChanged] = useState(false);
  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const element = event.currentTarget;
    const form = new FormData(element);
    const body = { current_password: String(form.get("current_password")), password: String(form.get("password")) };
    const done = await run((headers) => api.POST("/api/v1/me/password", { body, headers }));
    if (done !== undefined) {
      setChanged(true);
      element.reset();
    }
  }
  return (
    <div className="card">
      <h2>Password</h2>
      <form onSubmit={submit} noValidate aria-label="Change password">
        <Field label="Current password" name="current_password" errors={fieldErrors}>
          {(p) => <input {...p} type="password" autoComplete="current-password" required />}
        </Field>
        <Field label="New password" name="password" errors={fieldErrors} hint="At least 12 characters.">
          {(p) => <input {...p} type="password" autoComplete="new-password" required />}
        </Field>
        <ProblemNote error={error} />
        {changed ? <p role="status">Password changed; your other sessions are signed out.</p> : null}
        <button type="submit" disabled={pending}>
          Change password
        </button>
      </form>
    </div>
  );
}

function SignOutEverywhere() {
  const navigate = useNavigate();
  const { run, pending, error } = useCommand();
  async function signOut() {
    const done = await run((headers) => api.POST("/api/v1/auth/logout-everywhere", { headers }));
    if (done !== undefined) {
      saveTokens(null);
      navigate("/login");
    }
  }
  return (
    <div className="card">
      <h2>Sessions</h2>
      <p>Signed in on a computer you no longer use? End every session, this one too.</p>
      <ProblemNote error={error} />
      <button type="button" disabled={pending} onClick={() => void signOut()}>
        Sign out everywhere
      </button>
    </div>
  );
}
