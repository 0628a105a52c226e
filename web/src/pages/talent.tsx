/** Buyers find freelancers (talent search), keep a list of them and invite
 * them to a project; sellers answer their invitations. */

import { useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { publicFileUrl } from "../components/files";
import { ReputationLine } from "../components/reputation";
import { hasRole, useSession } from "../components/session";
import { Empty, Field, Loading, MoneyText, ProblemNote, SkillTags, useCommand, useLoad } from "../components/ui";
import { MoreButton, usePaged } from "../components/paged";
import { isMoney, parseMoney, toDecimal } from "../lib/money";
import type { FieldErrors } from "../lib/problem";

type Freelancer = Schemas["FreelancerResponse"];
type Invitation = Schemas["InvitationResponse"];

const FILTERS = ["q", "skills", "skills_mode", "rate_min", "rate_max", "min_job_success", "min_reviews", "sort"] as const;
const RATE_CURRENCY = "USD";

/** The query a filter form holds, money typed as a person writes it, or the
 * errors of the amounts that are not. */
export function talentQuery(form: FormData): { query: URLSearchParams } | { errors: FieldErrors } {
  const next = new URLSearchParams();
  const errors: FieldErrors = {};
  for (const key of FILTERS) {
    const value = String(form.get(key) ?? "").trim();
    if (!value || (key === "skills_mode" && value === "any")) continue;
    if (key === "rate_min" || key === "rate_max") {
      const parsed = parseMoney(value, RATE_CURRENCY);
      if (parsed.ok) next.set(key, String(parsed.amount));
      else errors[key] = [parsed.error];
      next.set("currency", RATE_CURRENCY);
    } else next.set(key, value);
  }
  return Object.keys(errors).length ? { errors } : { query: next };
}

export function TalentPage() {
  const [params, setParams] = useSearchParams();
  const tokens = useSession();
  const buyer = hasRole(tokens, "buyer");
  const [errors, setErrors] = useState<FieldErrors>({});
  const query = Object.fromEntries([...params.entries()]);
  const list = usePaged(
    (cursor) => unwrap(api.GET("/api/v1/freelancers", { params: { query: { ...query, limit: 20, cursor } } })),
    [params.toString()],
  );
  const page = list.first;
  const saved = useSaved(buyer);

  function filter(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const read = talentQuery(new FormData(event.currentTarget));
    setErrors("errors" in read ? read.errors : {});
    if ("query" in read) setParams(read.query);
  }
  const rate = (key: string) => {
    const value = params.get(key);
    return value && /^\d+$/.test(value) ? toDecimal(Number(value), RATE_CURRENCY) : "";
  };

  const items = list.items;
  return (
    <section>
      <h1>Find freelancers</h1>
      <form className="filters" onSubmit={filter} role="search" aria-label="Filter freelancers">
        <Field label="Keywords" name="q">
          {(p) => <input {...p} type="search" defaultValue={params.get("q") ?? ""} />}
        </Field>
        <Field label="Skills" name="skills" hint="Comma-separated">
          {(p) => <input {...p} defaultValue={params.get("skills") ?? ""} />}
        </Field>
        <Field label="Skills to match" name="skills_mode">
          {(p) => (
            <select {...p} defaultValue={params.get("skills_mode") ?? "any"}>
              <option value="any">Any of them</option>
              <option value="all">All of them</option>
            </select>
          )}
        </Field>
        <Field label={`Rate from (${RATE_CURRENCY}/h)`} name="rate_min" errors={errors}>
          {(p) => <input {...p} inputMode="decimal" defaultValue={rate("rate_min")} />}
        </Field>
        <Field label={`Rate up to (${RATE_CURRENCY}/h)`} name="rate_max" errors={errors}>
          {(p) => <input {...p} inputMode="decimal" defaultValue={rate("rate_max")} />}
        </Field>
        <Field label="Job success at least (%)" name="min_job_success">
          {(p) => <input {...p} type="number" min={0} max={100} defaultValue={params.get("min_job_success") ?? ""} />}
        </Field>
        <Field label="Reviews at least" name="min_reviews">
          {(p) => <input {...p} type="number" min={0} defaultValue={params.get("min_reviews") ?? ""} />}
        </Field>
        <Field label="Sort by" name="sort">
          {(p) => (
            <select {...p} defaultValue={params.get("sort") ?? ""}>
              <option value="">Best match</option>
              <option value="job_success">Job success</option>
              <option value="rate">Rate, lowest first</option>
              <option value="rate_desc">Rate, highest first</option>
            </select>
          )}
        </Field>
        <button type="submit">Search</button>
      </form>
      {page.loading && !page.data ? <Loading what="freelancers" /> : null}
      <ProblemNote error={page.error} onRetry={page.reload} />
      {page.data ? (
        <p className="meta" role="status">
          {page.data.total} freelancer{page.data.total === 1 ? "" : "s"}
        </p>
      ) : null}
      {page.data && items.length === 0 ? <Empty>Nobody matches these filters yet.</Empty> : null}
      <ul className="cards">
        {items.map((f) => (
          <li key={f.user_id} className="card">
            <FreelancerCard freelancer={f} saved={saved} buyer={buyer} />
          </li>
        ))}
      </ul>
      <MoreButton list={list} label="More freelancers" />
    </section>
  );
}

interface Saved {
  ids: ReadonlySet<string>;
  items: Schemas["SavedFreelancerResponse"][];
  loading: boolean;
  error: unknown;
  reload: () => void;
}

/** The buyer's saved freelancers (the first hundred: a list a person keeps by hand). */
function useSaved(buyer: boolean): Saved {
  const list = useLoad(
    () => (buyer ? unwrap(api.GET("/api/v1/me/saved-freelancers", { params: { query: { limit: 100 } } })) : Promise.resolve(null)),
    [buyer],
  );
  const items = list.data?.items ?? [];
  return { ids: new Set(items.map((s) => s.seller_id)), items, loading: list.loading, error: list.error, reload: list.reload };
}

function FreelancerCard({ freelancer: f, saved, buyer }: { freelancer: Freelancer; saved: Saved; buyer: boolean }) {
  const { run, pending, error } = useCommand();
  const [inviting, setInviting] = useState(false);
  const isSaved = saved.ids.has(f.user_id);
  async function toggleSaved() {
    const path = { seller_id: f.user_id };
    const done = await run((headers) =>
      isSaved
        ? api.DELETE("/api/v1/me/saved-freelancers/{seller_id}", { params: { path }, headers })
        : api.PUT("/api/v1/me/saved-freelancers/{seller_id}", { params: { path }, headers }),
    );
    if (done !== undefined) saved.reload();
  }
  return (
    <>
      {f.photo_file_id ? <img className="photo" src={publicFileUrl(f.photo_file_id)} alt="" width={64} height={64} /> : null}
      <h2>
        <Link to={`/users/${f.user_id}`}>{f.headline || "Freelancer"}</Link>
      </h2>
      <ReputationLine reputation={f.reputation} />
      {isMoney(f.hourly_rate) ? (
        <p className="meta">
          <MoneyText money={f.hourly_rate} /> an hour
        </p>
      ) : null}
      {f.bio ? <p className="clamp">{f.bio}</p> : null}
      <SkillTags skills={f.skills} />
      <ProblemNote error={error} />
      {buyer ? (
        <div className="actions">
          <button type="button" disabled={pending || saved.loading} onClick={() => void toggleSaved()} aria-pressed={isSaved}>
            {isSaved ? "Saved" : "Save"}
          </button>
          <button type="button" className="primary" onClick={() => setInviting((v) => !v)} aria-expanded={inviting}>
            Invite to a project
          </button>
        </div>
      ) : null}
      {inviting ? <InviteForm sellerId={f.user_id} /> : null}
    </>
  );
}

function InviteForm({ sellerId }: { sellerId: string }) {
  const projects = useLoad(
    () => unwrap(api.GET("/api/v1/me/projects", { params: { query: { status: "open", limit: 100 } } })),
    [],
  );
  const { run, pending, error, fieldErrors } = useCommand();
  const [sent, setSent] = useState(false);
  const open = projects.data?.items ?? [];
  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const done = await run((headers) =>
      api.POST("/api/v1/projects/{project_id}/invitations", {
        params: { path: { project_id: String(form.get("project_id")) } },
        headers,
        body: { seller_id: sellerId, message: String(form.get("message") ?? "") },
      }),
    );
    if (done) setSent(true);
  }
  if (projects.loading && !projects.data) return <Loading what="your projects" />;
  if (projects.error) return <ProblemNote error={projects.error} onRetry={projects.reload} />;
  if (!open.length) {
    return (
      <Empty>
        You have no open project to invite to. <Link to="/projects/new">Post one</Link>.
      </Empty>
    );
  }
  if (sent) return <p role="status">Invitation sent.</p>;
  return (
    <form onSubmit={submit} noValidate aria-label="Invitation">
      <Field label="Project" name="project_id" errors={fieldErrors}>
        {(p) => (
          <select {...p} required>
            {open.map((project) => (
              <option key={project.project_id} value={project.project_id}>
                {project.title}
              </option>
            ))}
          </select>
        )}
      </Field>
      <Field label="Message to the freelancer" name="message" errors={fieldErrors}>
        {(p) => <textarea {...p} rows={3} />}
      </Field>
      <ProblemNote error={error} />
      <button type="submit" className="primary" disabled={pending}>
        {pending ? "Sending…" : "Send invitation"}
      </button>
    </form>
  );
}

export function SavedFreelancersPage() {
  const saved = useSaved(true);
  return (
    <section>
      <h1>Saved freelancers</h1>
      {saved.loading && !saved.items.length ? <Loading what="your list" /> : null}
      <ProblemNote error={saved.error} onRetry={saved.reload} />
      {!saved.loading && !saved.error && saved.items.length === 0 ? (
        <Empty>
          Nobody saved yet. <Link to="/freelancers">Find freelancers</Link>.
        </Empty>
      ) : null}
      <ul className="cards">
        {saved.items.map((s) => (
          <li key={s.seller_id} className="card">
            <FreelancerCard freelancer={s.freelancer} saved={saved} buyer />
          </li>
        ))}
      </ul>
    </section>
  );
}

function ProjectTitle({ projectId }: { projectId: string }) {
  const project = useLoad(() => unwrap(api.GET("/api/v1/projects/{project_id}", { params: { path: { project_id: projectId } } })), [projectId]);
  return <Link to={`/projects/${projectId}`}>{project.data?.title ?? "The project"}</Link>;
}

export function InvitationsPage() {
  const list = useLoad(() => unwrap(api.GET("/api/v1/me/invitations")), []);
  return (
    <section>
      <h1>Invitations</h1>
      {list.loading && !list.data ? <Loading what="your invitations" /> : null}
      <ProblemNote error={list.error} onRetry={list.reload} />
      {list.data && list.data.items.length === 0 ? <Empty>No invitations yet: a complete profile helps buyers find you.</Empty> : null}
      <ul className="cards">
        {list.data?.items.map((invitation) => (
          <li key={invitation.project_id} className="card">
            <InvitationCard invitation={invitation} onChanged={list.reload} />
          </li>
        ))}
      </ul>
    </section>
  );
}

function InvitationCard({ invitation, onChanged }: { invitation: Invitation; onChanged: () => void }) {
  const navigate = useNavigate();
  const { run, pending, error, fieldErrors } = useCommand();
  const [declining, setDeclining] = useState(false);
  const path = { project_id: invitation.project_id, seller_id: invitation.seller_id };
  async function accept() {
    const answer = await run((headers) =>
      api.POST("/api/v1/projects/{project_id}/invitations/{seller_id}/accept", { params: { path }, headers }),
    );
    if (answer?.conversation_id) navigate(`/messages/${answer.conversation_id}`);
    else if (answer) onChanged();
  }
  async function decline(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const reason = String(new FormData(event.currentTarget).get("reason") ?? "");
    const answer = await run((headers) =>
      api.POST("/api/v1/projects/{project_id}/invitations/{seller_id}/decline", { params: { path }, headers, body: { reason } }),
    );
    if (answer) onChanged();
  }
  return (
    <>
      <h2>
        <ProjectTitle projectId={invitation.project_id} />
      </h2>
      <p className="meta">
        <span className="status">{invitation.status}</span>
        {invitation.invited_at ? ` · invited ${new Date(invitation.invited_at).toLocaleDateString()}` : null}
      </p>
      {invitation.message ? <blockquote>{invitation.message}</blockquote> : null}
      {invitation.reason ? <p className="meta">You declined: {invitation.reason}</p> : null}
      {invitation.conversation_id ? <Link to={`/messages/${invitation.conversation_id}`}>Talk with the buyer</Link> : null}
      <ProblemNote error={error} />
      {invitation.status === "open" && !declining ? (
        <div className="actions">
          <button type="button" className="primary" disabled={pending} onClick={() => void accept()}>
            Accept and talk
          </button>
          <button type="button" disabled={pending} onClick={() => setDeclining(true)}>
            Decline
          </button>
        </div>
      ) : null}
      {declining && invitation.status === "open" ? (
        <form onSubmit={decline} noValidate aria-label="Decline the invitation">
          <Field label="Why not (the buyer reads this)" name="reason" errors={fieldErrors}>
            {(p) => <input {...p} />}
          </Field>
          <button type="submit" disabled={pending}>
            Decline the invitation
          </button>
        </form>
      ) : null}
    </>
  );
}
