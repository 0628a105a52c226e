/** A contract: the offer to accept, then its milestones (fund, submit, ask
 * for changes, approve), the escrow that holds the money, and the reviews. */

import { useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { chosenFiles, useUploads } from "../components/files";
import { EscrowHolds, milestoneTitles } from "../components/escrow";
import { useSession } from "../components/session";
import { Empty, Field, Loading, MoneyText, ProblemNote, useCommand, useLoad } from "../components/ui";
import { useLiveNotifications } from "../components/notifications";
import { OfferTermsFields, readOfferTerms } from "../components/offer-terms";
import type { FieldErrors } from "../lib/problem";

type Contract = Schemas["ContractResponse"];
type Milestone = Schemas["MilestoneStateResponse"];

export function ContractPage() {
  const { contractId = "" } = useParams();
  const path = { contract_id: contractId };
  const contract = useLoad(() => unwrap(api.GET("/api/v1/contracts/{contract_id}", { params: { path } })), [contractId]);
  // Money moves in escrow, then the contract learns it: a notification says when.
  useLiveNotifications(() => contract.reload());
  if (contract.loading && !contract.data) return <Loading what="the contract" />;
  if (!contract.data) return <ProblemNote error={contract.error} onRetry={contract.reload} />;
  return <ContractView contract={contract.data} reload={contract.reload} />;
}

function ContractView({ contract, reload }: { contract: Contract; reload: () => void }) {
  const tokens = useSession();
  const role = tokens?.user_id === contract.buyer_id ? "buyer" : tokens?.user_id === contract.seller_id ? "seller" : null;
  const currency = contract.terms.currency;
  return (
    <article>
      <header className="card">
        <h1>Contract</h1>
        <p className="meta">
          <span className="status">{contract.status}</span> · offer version {contract.offer_version} ·{" "}
          <Link to={`/projects/${contract.project_id}`}>the project</Link>
        </p>
        <p className="prose">{contract.terms.scope}</p>
        {role && contract.status !== "offered" && contract.status !== "changes_requested" ? (
          <WorkRoomLink contractId={contract.contract_id} />
        ) : null}
        {contract.status === "offered" || contract.status === "changes_requested" ? (
          <OfferPanel contract={contract} role={role} reload={reload} />
        ) : null}
      </header>
      <section className="card" aria-labelledby="milestones-heading">
        <h2 id="milestones-heading">Milestones</h2>
        <ol className="milestones">
          {contract.milestones.map((m) => (
            <li key={m.milestone_id}>
              <MilestoneRow contract={contract} milestone={m} role={role} currency={currency} reload={reload} />
            </li>
          ))}
        </ol>
      </section>
      <Escrow contractId={contract.contract_id} milestones={contract.milestones} />
      {contract.status === "completed" && role ? <Reviews contractId={contract.contract_id} role={role} /> : null}
    </article>
  );
}

/** The contract's work room: one conversation for both parties, which an
 * administrator reads if a milestone is disputed. */
function WorkRoomLink({ contractId }: { contractId: string }) {
  const navigate = useNavigate();
  const { run, pending, error } = useCommand();
  async function open() {
    const room = await run((headers) => api.POST("/api/v1/conversations", { body: { contract_id: contractId }, headers }));
    if (room) navigate(`/messages/${room.conversation_id}`);
  }
  return (
    <p className="actions">
      <button type="button" disabled={pending} onClick={() => void open()}>
        Work room
      </button>
      <ProblemNote error={error} />
    </p>
  );
}

/** The offer while it is being agreed: every version with what was said to
 * it; the seller accepts, asks for changes or declines; the buyer revises or
 * withdraws. */
function OfferPanel({ contract, role, reload }: { contract: Contract; role: string | null; reload: () => void }) {
  const path = { contract_id: contract.contract_id };
  const versions = useLoad(
    () => unwrap(api.GET("/api/v1/contracts/{contract_id}/offers", { params: { path } })),
    [contract.contract_id, contract.offer_version, contract.status],
  );
  const { run, pending, error, fieldErrors } = useCommand();
  const [mode, setMode] = useState<"changes" | "revise" | null>(null);
  const currency = contract.terms.currency;

  const act = async (send: Parameters<typeof run>[0]) => {
    const done = await run(send);
    if (done !== undefined) {
      setMode(null);
      reload();
    }
  };
  const accept = () =>
    act((headers) =>
      api.POST("/api/v1/contracts/{contract_id}/accept", { params: { path }, body: { version: contract.offer_version }, headers }),
    );
  const decline = () => {
    const reason = window.prompt("Why decline? The buyer reads this.") ?? "";
    if (reason.trim()) void act((headers) => api.POST("/api/v1/contracts/{contract_id}/decline", { params: { path }, body: { reason }, headers }));
  };
  const withdraw = () => {
    const reason = window.prompt("Why withdraw? The seller reads this.") ?? "";
    if (reason.trim()) void act((headers) => api.POST("/api/v1/contracts/{contract_id}/withdraw", { params: { path }, body: { reason }, headers }));
  };
  const askForChanges = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const message = String(new FormData(event.currentTarget).get("message"));
    void act((headers) => api.POST("/api/v1/contracts/{contract_id}/request-changes", { params: { path }, body: { message }, headers }));
  };
  const [local, setLocal] = useState<FieldErrors>({});
  const revise = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const read = readOfferTerms(new FormData(event.currentTarget), currency);
    setLocal("errors" in read ? read.errors : {});
    if ("errors" in read) return;
    void act((headers) =>
      api.POST("/api/v1/contracts/{contract_id}/revise", { params: { path }, headers, body: { terms: read.terms } }),
    );
  };
  const errors = { ...fieldErrors, ...local };
  const offered = contract.status === "offered";
  return (
    <div className="offer-panel">
      <h2>Offer</h2>
      <ol className="versions" aria-label="Offer versions">
        {versions.data?.items.map((v) => (
          <li key={v.version}>
            <strong>Version {v.version}</strong>: {v.terms.milestones.map((m) => `${m.title} `)}
            <MoneyText money={{ amount: v.terms.milestones.reduce((sum, m) => sum + m.amount, 0), currency: v.terms.currency }} />
            {v.answers.map((a) => (
              <p key={`${a.type}-${a.at}`} className="meta">
                {a.type.replace("_", " ")}
                {a.message ? `: ${a.message}` : ""}
              </p>
            ))}
          </li>
        ))}
      </ol>
      <ProblemNote error={error ?? versions.error} />
      {role === "seller" && offered ? (
        <div className="actions">
          <button type="button" className="primary" disabled={pending} onClick={() => void accept()}>
            Accept offer
          </button>
          <button type="button" disabled={pending} onClick={() => setMode("changes")}>
            Ask for changes
          </button>
          <button type="button" disabled={pending} onClick={decline}>
            Decline
          </button>
        </div>
      ) : null}
      {role === "buyer" ? (
        <>
          <p role="status">
            {offered ? "Waiting for the seller to answer the offer." : "The seller asked for changes: revise the offer."}
          </p>
          <div className="actions">
            <button type="button" disabled={pending} onClick={() => setMode("revise")}>
              Revise offer
            </button>
            <button type="button" disabled={pending} onClick={withdraw}>
              Withdraw offer
            </button>
          </div>
        </>
      ) : null}
      {mode === "changes" ? (
        <form onSubmit={askForChanges} noValidate aria-label="Ask for changes">
          <Field label="What should change" name="message" errors={errors}>
            {(p) => <textarea {...p} rows={3} required />}
          </Field>
          <button type="submit" className="primary" disabled={pending}>
            Send the request
          </button>
        </form>
      ) : null}
      {mode === "revise" ? (
        <form onSubmit={revise} noValidate aria-label="Revise the offer">
          <OfferTermsFields
            currency={currency}
            errors={errors}
            defaults={{
              scope: contract.terms.scope,
              milestones: contract.terms.milestones.map((m) => ({ title: m.title, due_date: m.due_date, amount: m.amount })),
            }}
          />
          <button type="submit" className="primary" disabled={pending}>
            Send the revised offer
          </button>
        </form>
      ) : null}
    </div>
  );
}

function MilestoneRow(props: {
  contract: Contract;
  milestone: Milestone;
  role: string | null;
  currency: string;
  reload: () => void;
}) {
  const { contract, milestone: m, role, currency, reload } = props;
  const { run, pending, error, fieldErrors } = useCommand();
  const [mode, setMode] = useState<"submit" | "dispute" | "progress" | null>(null);
  const [reported, setReported] = useState(false);
  const { upload, uploading, uploadError } = useUploads();
  const path = { contract_id: contract.contract_id, milestone_id: m.milestone_id };
  const active = contract.status === "active";

  const fund = async () => {
    const done = await run((headers) =>
      api.POST("/api/v1/contracts/{contract_id}/fund", {
        params: { path: { contract_id: contract.contract_id }, header: headers },
        body: { milestone_ids: [m.milestone_id], payment_method: "pm_card_visa" },
      }),
    );
    if (done) reload();
  };
  const approve = async () => {
    const done = await run((headers) =>
      api.POST("/api/v1/contracts/{contract_id}/milestones/{milestone_id}/approve", { params: { path, header: headers } }),
    );
    if (done) reload();
  };
  const requestChanges = async () => {
    const reason = window.prompt("What should change?") ?? "";
    if (!reason.trim()) return;
    const done = await run((headers) =>
      api.POST("/api/v1/contracts/{contract_id}/milestones/{milestone_id}/request-changes", {
        params: { path },
        body: { reason },
        headers,
      }),
    );
    if (done) reload();
  };
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const file_ids = await upload(chosenFiles(form), "deliverable");
    if (!file_ids) return;
    const done = await run((headers) =>
      api.POST("/api/v1/contracts/{contract_id}/milestones/{milestone_id}/submit", {
        params: { path },
        body: { note: String(form.get("note")), file_ids },
        headers,
      }),
    );
    if (done) {
      setMode(null);
      reload();
    }
  };
  const dispute = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const reason = String(new FormData(event.currentTarget).get("reason"));
    const done = await run((headers) =>
      api.POST("/api/v1/contracts/{contract_id}/milestones/{milestone_id}/dispute", {
        params: { path },
        body: { reason },
        headers,
      }),
    );
    if (done) {
      setMode(null);
      reload();
    }
  };
  const reportProgress = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const element = event.currentTarget;
    const note = String(new FormData(element).get("note"));
    const done = await run((headers) =>
      api.POST("/api/v1/contracts/{contract_id}/milestones/{milestone_id}/progress", {
        params: { path },
        body: { note },
        headers,
      }),
    );
    if (done !== undefined) {
      setMode(null);
      setReported(true);
    }
  };

  return (
    <div className="milestone">
      <h3>
        {m.title} · <MoneyText money={{ amount: m.amount, currency }} />
      </h3>
      <p className="meta">
        due {m.due_date} · <span className="status" data-testid={`milestone-status-${m.milestone_id}`}>{m.status}</span>
        {m.overdue ? <span className="badge warn">Overdue</span> : null}
      </p>
      <ProblemNote error={error} onRetry={() => void fund()} />
      <div className="actions">
        {active && role === "buyer" && m.status === "pending" ? (
          <button type="button" className="primary" disabled={pending} onClick={() => void fund()}>
            Fund <MoneyText money={{ amount: m.amount, currency }} /> into escrow
          </button>
        ) : null}
        {active && role === "seller" && (m.status === "funded" || m.status === "changes_requested") && !mode ? (
          <>
            <button type="button" className="primary" onClick={() => setMode("submit")}>
              Submit work
            </button>
            <button type="button" onClick={() => setMode("progress")}>
              Report progress
            </button>
          </>
        ) : null}
        {active && role === "buyer" && m.status === "submitted" && !mode ? (
          <>
            <button type="button" className="primary" disabled={pending} onClick={() => void approve()}>
              Approve and release payment
            </button>
            <button type="button" disabled={pending} onClick={() => void requestChanges()}>
              Request changes
            </button>
            <button type="button" disabled={pending} onClick={() => setMode("dispute")}>
              Dispute
            </button>
          </>
        ) : null}
      </div>
      {m.status === "disputed" ? (
        <p role="status">In dispute: an administrator reads the contract and the work room, then decides who gets the money held.</p>
      ) : null}
      {reported ? <p role="status">Progress reported: the buyer is told.</p> : null}
      {mode === "submit" ? (
        <form onSubmit={submit} noValidate aria-label="Submit work">
          <Field label="What you deliver" name="note" errors={fieldErrors}>
            {(p) => <textarea {...p} rows={3} required />}
          </Field>
          <Field label="Delivered files" name="file_ids" errors={fieldErrors}>
            {(p) => <input {...p} name="files" type="file" multiple />}
          </Field>
          <ProblemNote error={uploadError} />
          <button type="submit" className="primary" disabled={pending || uploading}>
            Submit for review
          </button>
        </form>
      ) : null}
      {mode === "progress" ? (
        <form onSubmit={reportProgress} noValidate aria-label="Report progress">
          <Field label="Where the work stands" name="note" errors={fieldErrors}>
            {(p) => <textarea {...p} rows={3} required />}
          </Field>
          <button type="submit" className="primary" disabled={pending}>
            Send the update
          </button>
        </form>
      ) : null}
      {mode === "dispute" ? (
        <form onSubmit={dispute} noValidate aria-label="Dispute the milestone">
          <Field label="What is wrong with the work" name="reason" errors={fieldErrors}>
            {(p) => <textarea {...p} rows={3} required />}
          </Field>
          <button type="submit" className="primary" disabled={pending}>
            Open the dispute
          </button>
          <button type="button" className="link" onClick={() => setMode(null)}>
            Cancel
          </button>
        </form>
      ) : null}
    </div>
  );
}

/** What escrow holds; read again when a milestone's status changes (money
 * moved), keeping the last answer on screen meanwhile. */
function Escrow({ contractId, milestones }: { contractId: string; milestones: Milestone[] }) {
  const escrow = useLoad(
    () => unwrap(api.GET("/api/v1/contracts/{contract_id}/escrow", { params: { path: { contract_id: contractId } } })),
    [contractId, milestones.map((m) => m.status).join()],
  );
  const titles = milestoneTitles(milestones);
  if (!escrow.data) {
    return escrow.error ? <ProblemNote error={escrow.error} onRetry={escrow.reload} /> : <Loading what="escrow" />;
  }
  return (
    <section className="card" aria-labelledby="escrow-heading">
      <h2 id="escrow-heading">Escrow</h2>
      {escrow.data.holds.length === 0 ? <Empty>Nothing funded yet.</Empty> : null}
      <EscrowHolds holds={escrow.data.holds} titles={titles} />
    </section>
  );
}

const CATEGORIES = {
  buyer: ["quality", "communication", "expertise", "deadlines", "value"],
  seller: ["clarity", "communication", "payment_promptness"],
} as const;

function Reviews({ contractId, role }: { contractId: string; role: "buyer" | "seller" }) {
  const path = { contract_id: contractId };
  const reviews = useLoad(() => unwrap(api.GET("/api/v1/contracts/{contract_id}/reviews", { params: { path } })), [contractId]);
  const { run, pending, error, fieldErrors } = useCommand();
  const [sent, setSent] = useState(false);
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const rating = Number(form.get("rating"));
    const categories = Object.fromEntries(CATEGORIES[role].map((c) => [c, rating]));
    const done = await run((headers) =>
      api.POST("/api/v1/contracts/{contract_id}/reviews", {
        params: { path },
        body: { rating, categories, text: String(form.get("text")) },
        headers,
      }),
    );
    if (done) {
      setSent(true);
      reviews.reload();
    }
  };
  return (
    <section className="card" aria-labelledby="reviews-heading">
      <h2 id="reviews-heading">Reviews</h2>
      <p className="meta">Reviews are revealed when both of you have written one, or after the review window.</p>
      {reviews.data?.items.map((r) => (
        <blockquote key={r.reviewer_id}>
          ★ {r.rating} — {r.text}
        </blockquote>
      ))}
      {sent ? (
        <p role="status">Thank you: your review is in.</p>
      ) : (
        <form onSubmit={submit} noValidate aria-label="Write a review">
          <Field label={`Rate the ${role === "buyer" ? "seller" : "buyer"} (1-5)`} name="rating" errors={fieldErrors}>
            {(p) => (
              <select {...p} defaultValue="5">
                {[5, 4, 3, 2, 1].map((n) => (
                  <option key={n} value={n}>
                    {n}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label="Your review" name="text" errors={fieldErrors}>
            {(p) => <textarea {...p} rows={3} required />}
          </Field>
          <ProblemNote error={error} />
          <button type="submit" disabled={pending}>
            Send review
          </button>
        </form>
      )}
    </section>
  );
}

export function MyContractsPage() {
  const list = useLoad(() => unwrap(api.GET("/api/v1/me/contracts")), []);
  return (
    <section>
      <h1>Contracts</h1>
      {list.loading && !list.data ? <Loading what="your contracts" /> : null}
      <ProblemNote error={list.error} onRetry={list.reload} />
      {list.data && list.data.items.length === 0 ? <Empty>No contracts yet.</Empty> : null}
      <ul className="cards">
        {list.data?.items.map((c) => (
          <li key={c.contract_id} className="card">
            <Link to={`/contracts/${c.contract_id}`}>{c.terms.scope.slice(0, 80) || "Contract"}</Link> ·{" "}
            <span className="status">{c.status}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}
