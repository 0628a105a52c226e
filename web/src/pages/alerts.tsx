/** A seller's saved keyword alerts and the projects they matched. */

import { type FormEvent } from "react";
import { Link } from "react-router";
import { api, unwrap } from "../api/client";
import { Empty, Field, Loading, ProblemNote, useCommand, useLoad } from "../components/ui";

export function AlertsPage() {
  const alerts = useLoad(() => unwrap(api.GET("/api/v1/alerts")), []);
  const matches = useLoad(() => unwrap(api.GET("/api/v1/alerts/matches", { params: { query: { limit: 50 } } })), []);
  const { run, pending, error, fieldErrors } = useCommand();
  const remove = useCommand();

  async function save(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const formElement = event.currentTarget;
    const form = new FormData(formElement);
    const saved = await run((headers) =>
      api.POST("/api/v1/alerts", {
        headers,
        body: {
          name: String(form.get("name")),
          keywords: String(form.get("keywords")),
          skills: String(form.get("skills"))
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean),
        },
      }),
    );
    if (saved) {
      formElement.reset();
      alerts.reload();
    }
  }

  async function drop(alertId: string) {
    const done = await remove.run((headers) =>
      api.DELETE("/api/v1/alerts/{alert_id}", { params: { path: { alert_id: alertId } }, headers }),
    );
    if (done !== undefined) alerts.reload();
  }

  return (
    <section>
      <h1>Keyword alerts</h1>
      <form onSubmit={save} noValidate className="card" aria-label="New alert">
        <h2>New alert</h2>
        <Field label="Name" name="name" errors={fieldErrors}>
          {(p) => <input {...p} required />}
        </Field>
        <Field label="Keywords" name="keywords" errors={fieldErrors}>
          {(p) => <input {...p} />}
        </Field>
        <Field label="Skills" name="skills" errors={fieldErrors} hint="Comma-separated">
          {(p) => <input {...p} />}
        </Field>
        <ProblemNote error={error} />
        <button type="submit" className="primary" disabled={pending}>
          Save alert
        </button>
      </form>
      <div className="card">
        <h2>Your alerts</h2>
        {alerts.loading && !alerts.data ? <Loading what="your alerts" /> : null}
        <ProblemNote error={alerts.error ?? remove.error} onRetry={alerts.reload} />
        {alerts.data && alerts.data.items.length === 0 ? <Empty>No alerts yet.</Empty> : null}
        <ul>
          {alerts.data?.items.map((a) => (
            <li key={a.alert_id}>
              {a.name}: {a.keywords} {a.skills?.length ? `(${a.skills.join(", ")})` : ""}{" "}
              <button type="button" className="link" onClick={() => void drop(a.alert_id)}>
                Delete <span className="visually-hidden">{a.name}</span>
              </button>
            </li>
          ))}
        </ul>
      </div>
      <div className="card">
        <h2>Matches</h2>
        {matches.data && matches.data.items.length === 0 ? <Empty>No project matched yet.</Empty> : null}
        <ul>
          {matches.data?.items.map((m) => (
            <li key={`${m.alert_id}-${m.project_id}`}>
              <Link to={`/projects/${m.project_id}`}>{m.title}</Link>{" "}
              <small className="meta">{new Date(m.matched_at).toLocaleString()}</small>
            </li>
          ))}
        </ul>
      </div>
    </section>
  );
}
