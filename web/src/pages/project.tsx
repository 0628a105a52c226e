/** One project: its brief; for its buyer the proposals, to compare, shortlist,
 * decline and send an offer; for a seller the proposal form. */

import { useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { Budget } from "../components/budget";
import { FileList } from "../components/files";
import { OfferTermsFields, readOfferTerms } from "../components/offer-terms";
import { ReputationLine } from "../components/reputation";
import { hasRole, useSession } from "../components/session";
import { Empty, Field, Loading, MoneyText, ProblemNote, SkillTags, useCommand, useLoad } from "../components/ui";
import { safeLink } from "../lib/links";
import { parseMoney } from "../lib/money";
import type { FieldErrors } from "../lib/problem";

type Proposal = Schemas["ProposalResponse"];

export function ProjectPage() {
  const { projectId = "" } = useParams();
  const tokens = useSession();
  const project = useLoad(
    () => unwrap(api.GET("/api/v1/projects/{project_id}", { params: { path: { project_id: projectId } } })),
    [projectId],
  );
  if (project.loading && !project.data) return <Loading what="the project" />;
  if (!project.data) return <ProblemNote error={project.error} onRetry={project.reload} />;
  const p = project.data;
  const mine = tokens?.user_id === p.buyer_id;
  return (
    <article>
      <header className="card">
        <h1>{p.title}</h1>
        <p className="meta">
          <Budget budget={p.budget} /> · due {p.deadline} · <span className="status">{p.status}</span> · version{" "}
          {p.version}
        </p>
        <p className="prose">{p.description}</p>
        {p.scope ? (
          <>
            <h2>Scope</h2>
            <p className="prose">{p.scope}</p>
          </>
        ) : null}
        {p.objectives?.length ? (
          <>
            <h2>Objectives</h2>
            <ul>
              {p.objectives.map((o) => (
                <li key={o}>{o}</li>
              ))}
            </ul>
          </>
        ) : null}
        <SkillTags skills={p.skills} />
        {p.attachment_ids?.length ? (
          <>
            <h2>Attached files</h2>
            <FileList ids={p.attachment_ids} label="Attached files" />
          </>
        ) : null}
      </header>
      {mine ? <Proposals projectId={projectId} currency={p.budget.currency} /> : null}
      {!mine && hasRole(tokens, "seller") && p.status === "open" ? (
        <ProposalForm projectId={projectId} currency={p.budget.currency} />
      ) : null}
      {!tokens ? (
        <p>
          <Link to={`/login?next=/projects/${projectId}`}>Sign in</Link> to send a proposal.
        </p>
      ) : null}
    </article>
  );
}

function Proposals({ projectId, currency }: { projectId: string; currency: string }) {
  const list = useLoad(
    () =>
      unwrap(
        api.GET("/api/v1/projects/{project_id}/proposals", {
          params: { path: { project_id: projectId }, query: { limit: 50 } },
        }),
      ),
    [projectId],
  );
  const [offering, setOffering] = useState<string | null>(null);
  return (
    <section className="card" aria-labelledby="proposals-heading">
      <h2 id="proposals-heading">Proposals</h2>
      {list.loading && !list.data ? <Loading what="proposals" /> : null}
      <ProblemNote error={list.error} onRetry={list.reload} />
      {list.data && list.data.items.length === 0 ? <Empty>No proposals yet.</Empty> : null}
      <ul className="proposals">
        {list.data?.items.map((proposal) => (
          <li key={proposal.proposal_id} className={proposal.shortlisted ? "shortlisted" : ""}>
            <ProposalCard proposal={proposal} onChanged={list.reload} onOffer={() => setOffering(proposal.proposal_id)} />
            {offering === proposal.proposal_id ? <OfferForm proposal={proposal} currency={currency} /> : null}
          </li>
        ))}
      </ul>
    </section>
  );
}

function ProposalCard({ proposal, onChanged, onOffer }: { proposal: Proposal; onChanged: () => void; onOffer: () => void }) {
  const { run, pending, error } = useCommand();
  const id = proposal.proposal_id;
  const act = async (action: "shortlist" | "unshortlist") => {
    const done = await run((headers) =>
      api.POST(`/api/v1/proposals/{proposal_id}/${action}`, { params: { path: { proposal_id: id } }, headers }),
    );
    if (done) onChanged();
  };
  const decline = async () => {
    const reason = window.prompt("Why decline? The seller reads this.") ?? "";
    if (!reason.trim()) return;
    const done = await run((headers) =>
      api.POST("/api/v1/proposals/{proposal_id}/decline", {
        params: { path: { proposal_id: id } },
        body: { reason },
        headers,
      }),
    );
    if (done) onChanged();
  };
  const open = proposal.status === "submitted";
  const navigate = useNavigate();
  const chat = async () => {
    const conversation = await run((headers) => api.POST("/api/v1/conversations", { body: { proposal_id: id }, headers }));
    if (conversation) navigate(`/messages/${conversation.conversation_id}`);
  };
  return (
    <div className="proposal">
      <h3>
        {proposal.seller?.headline ?? "Seller"} <small className="meta">({proposal.status})</small>
        {proposal.shortlisted ? <span className="badge">Shortlisted</span> : null}
      </h3>
      <ReputationLine reputation={proposal.seller?.reputation} />
      <p>
        <MoneyText money={proposal.price} /> {proposal.price.type === "hourly" ? "an hour" : ""} · {proposal.duration_days}{" "}
        days
      </p>
      <p className="prose">{proposal.cover_letter}</p>
      {proposal.samples?.length ? (
        <>
          <h4>Samples</h4>
          <ul className="samples" aria-label="Samples">
            {proposal.samples.map((sample) => (
              <li key={sample.item_id}>
                <Sample sample={sample} />
              </li>
            ))}
          </ul>
        </>
      ) : null}
      <FileList ids={proposal.attachment_ids ?? []} label="Attached files" />
      <p>
        <Link to={`/users/${proposal.seller_id}`}>Profile and reviews</Link>
      </p>
      <ProblemNote error={error} />
      {open ? (
        <div className="actions">
          <button type="button" disabled={pending} onClick={() => void act(proposal.shortlisted ? "unshortlist" : "shortlist")}>
            {proposal.shortlisted ? "Remove from shortlist" : "Shortlist"}
          </button>
          <button type="button" disabled={pending} onClick={() => void decline()}>
            Decline
          </button>
          <button type="button" disabled={pending} onClick={() => void chat()}>
            Chat
          </button>
          <button type="button" className="primary" onClick={onOffer}>
            Send an offer
          </button>
        </div>
      ) : null}
    </div>
  );
}

/** A portfolio sample: its file or link opens in a new tab; a text-only one is its title. */
function Sample({ sample }: { sample: Schemas["SampleResponse"] }) {
  const href = sample.url ? (sample.url.startsWith("/api/v1/files/") ? sample.url : safeLink(sample.url)) : null;
  const kind = sample.type === "link" ? "link" : sample.type === "text" ? "" : sample.type;
  return (
    <>
      {href ? (
        <a href={href} target="_blank" rel="noopener noreferrer nofollow">
          {sample.title}
        </a>
      ) : (
        sample.title
      )}
      {kind ? <small className="meta"> ({kind})</small> : null}
    </>
  );
}

function OfferForm({ proposal, currency }: { proposal: Proposal; currency: string }) {
  const navigate = useNavigate();
  const { run, pending, error, fieldErrors } = useCommand();
  const [local, setLocal] = useState<FieldErrors>({});
  const inTwoWeeks = new Date(Date.now() + 14 * 86_400_000).toISOString().slice(0, 10);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const read = readOfferTerms(new FormData(event.currentTarget), currency);
    setLocal("errors" in read ? read.errors : {});
    if ("errors" in read) return;
    const contract = await run((headers) =>
      api.POST("/api/v1/proposals/{proposal_id}/offer", {
        params: { path: { proposal_id: proposal.proposal_id } },
        headers,
        body: { terms: read.terms },
      }),
    );
    if (contract) navigate(`/contracts/${contract.contract_id}`);
  }
  return (
    <form className="offer" onSubmit={submit} noValidate aria-label="Offer">
      <OfferTermsFields
        currency={currency}
        errors={{ ...fieldErrors, ...local }}
        defaults={{ scope: proposal.cover_letter.slice(0, 200), milestones: [{ title: "Delivery", due_date: inTwoWeeks }] }}
      />
      <ProblemNote error={error} />
      <button type="submit" className="primary" disabled={pending}>
        {pending ? "Sending…" : "Send offer"}
      </button>
    </form>
  );
}

function ProposalForm({ projectId, currency }: { projectId: string; currency: string }) {
  const navigate = useNavigate();
  const tokens = useSession();
  const { run, pending, error, fieldErrors } = useCommand();
  const [local, setLocal] = useState<FieldErrors>({});
  const me = tokens?.user_id ?? "";
  const profile = useLoad(() => unwrap(api.GET("/api/v1/users/{user_id}/profile", { params: { path: { user_id: me } } })), [me]);
  const portfolio = profile.data?.seller && "portfolio" in profile.data.seller ? (profile.data.seller.portfolio ?? []) : [];

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const amount = parseMoney(String(form.get("price")), currency);
    if (!amount.ok) {
      setLocal({ "price.amount": [amount.error] });
      return;
    }
    setLocal({});
    const proposal = await run((headers) =>
      api.POST("/api/v1/projects/{project_id}/proposals", {
        params: { path: { project_id: projectId } },
        headers,
        body: {
          cover_letter: String(form.get("cover_letter")),
          duration_days: Number(form.get("duration_days")),
          price: { type: "fixed", currency, amount: amount.amount },
          portfolio_item_ids: form.getAll("samples").map(String),
        },
      }),
    );
    if (proposal) navigate("/me/proposals");
  }
  const errors = { ...fieldErrors, ...local };
  return (
    <section className="card" aria-labelledby="propose-heading">
      <h2 id="propose-heading">Send a proposal</h2>
      <form onSubmit={submit} noValidate>
        <Field label="Cover letter" name="cover_letter" errors={errors}>
          {(p) => <textarea {...p} rows={5} required />}
        </Field>
        <div className="row">
          <Field label={`Price (${currency})`} name="price.amount" errors={errors}>
            {(p) => <input {...p} name="price" inputMode="decimal" required />}
          </Field>
          <Field label="Days to deliver" name="duration_days" errors={errors}>
            {(p) => <input {...p} type="number" min={1} required defaultValue={14} />}
          </Field>
        </div>
        {portfolio.length ? (
          <fieldset className={fieldErrors.portfolio_item_ids ? "invalid" : ""}>
            <legend>Samples of your work</legend>
            {portfolio.map((item) => (
              <label key={item.item_id} className="check">
                <input type="checkbox" name="samples" value={item.item_id} /> {item.title}
              </label>
            ))}
            {fieldErrors.portfolio_item_ids?.map((m) => (
              <p key={m} className="field-errors">
                {m}
              </p>
            ))}
          </fieldset>
        ) : (
          <p className="meta">
            Add work to <Link to={`/users/${me}`}>your portfolio</Link> to show samples with your proposals.
          </p>
        )}
        <ProblemNote error={error} />
        <button type="submit" className="primary" disabled={pending}>
          {pending ? "Sending…" : "Send proposal"}
        </button>
      </form>
    </section>
  );
}

export function MyProposalsPage() {
  const list = useLoad(() => unwrap(api.GET("/api/v1/me/proposals", { params: { query: { limit: 50 } } })), []);
  return (
    <section>
      <h1>My proposals</h1>
      {list.loading && !list.data ? <Loading what="your proposals" /> : null}
      <ProblemNote error={list.error} onRetry={list.reload} />
      {list.data && list.data.items.length === 0 ? (
        <Empty>
          No proposals yet. <Link to="/projects">Find a project</Link>.
        </Empty>
      ) : null}
      <ul className="cards">
        {list.data?.items.map((p) => (
          <li key={p.proposal_id} className="card">
            <Link to={`/projects/${p.project_id}`}>Project</Link> · <MoneyText money={p.price} /> ·{" "}
            <span className="status">{p.status}</span>
            {p.project_changed_since ? <span className="badge">Project changed since</span> : null}
          </li>
        ))}
      </ul>
    </section>
  );
}
