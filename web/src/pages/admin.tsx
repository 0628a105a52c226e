/** The administrators' desk: open disputes with their amounts and age, and a
 * disputed contract's whole case (terms, history, escrow, work room, files)
 * to read before deciding how the money held is split. */

import { useState, type FormEvent, type ReactNode } from "react";
import { Link, useParams } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { EscrowHolds, milestoneTitles } from "../components/escrow";
import { useDownload } from "../components/files";
import { hasRole, useSession } from "../components/session";
import { Empty, Field, Loading, MoneyText, ProblemNote, ScrollTable, useCommand, useLoad } from "../components/ui";
import { parseMoney } from "../lib/money";
import type { FieldErrors } from "../lib/problem";

type Dispute = Schemas["DisputeSummary"];
type Case = Schemas["DisputeCase"];

/** "3 h", "2 d": how long a dispute has waited. */
export function age(seconds: number): string {
  if (seconds < 3600) return `${Math.max(1, Math.round(seconds / 60))} min`;
  if (seconds < 86_400) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86_400)} d`;
}

/** Who did something, in words: a party, the marketplace's own services
 * (their actor ids have a kind, such as `service:escrow`), or an administrator. */
export function actorName(id: string | null | undefined, parties: { buyer_id: string; seller_id: string }): string {
  if (id === parties.buyer_id) return "the buyer";
  if (id === parties.seller_id) return "the seller";
  if (!id || id.includes(":")) return "the marketplace";
  return "an administrator";
}

function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function AdminOnly({ children }: { children: ReactNode }) {
  const tokens = useSession();
  if (!hasRole(tokens, "admin")) {
    return (
      <section className="card narrow">
        <h1>Administrators only</h1>
        <p>
          The desk needs an administrator signed in with a second factor. <Link to="/account">Turn on two-factor sign-in</Link>,
          then sign in again with a code.
        </p>
      </section>
    );
  }
  return <>{children}</>;
}

export function DisputesPage() {
  return (
    <AdminOnly>
      <DisputeList />
    </AdminOnly>
  );
}

function DisputeList() {
  const list = useLoad(() => unwrap(api.GET("/api/v1/admin/disputes")), []);
  return (
    <section>
      <h1>Open disputes</h1>
      {list.loading && !list.data ? <Loading what="open disputes" /> : null}
      <ProblemNote error={list.error} onRetry={list.reload} />
      {list.data && list.data.items.length === 0 ? <Empty>No open disputes.</Empty> : null}
      {list.data?.items.length ? (
        <ScrollTable label="Open disputes">
          <thead>
            <tr>
              <th scope="col">Contract</th>
              <th scope="col">What</th>
              <th scope="col">Held</th>
              <th scope="col">Waiting</th>
              <th scope="col">Reason</th>
            </tr>
          </thead>
          <tbody>
            {list.data.items.map((d) => (
              <tr key={`${d.contract_id}-${d.milestone_id ?? d.week}`}>
                <td>
                  <Link to={`/admin/disputes/${d.contract_id}`}>Case {d.contract_id.slice(0, 8)}</Link>
                </td>
                <td>{d.kind === "week" ? `week ${d.week}` : "milestone"}</td>
                <td>
                  <MoneyText money={{ amount: d.amount, currency: d.currency }} />
                </td>
                <td>{age(d.age_seconds)}</td>
                <td className="clamp">{d.reason}</td>
              </tr>
            ))}
          </tbody>
        </ScrollTable>
      ) : null}
    </section>
  );
}

export function DisputeCasePage() {
  return (
    <AdminOnly>
      <CaseView />
    </AdminOnly>
  );
}

function CaseView() {
  const { contractId = "" } = useParams();
  const path = { contract_id: contractId };
  const found = useLoad(() => unwrap(api.GET("/api/v1/admin/disputes/{contract_id}", { params: { path } })), [contractId]);
  if (found.loading && !found.data) return <Loading what="the case" />;
  if (!found.data) return <ProblemNote error={found.error} onRetry={found.reload} />;
  const c: Case = found.data;
  const party = (id: string | null | undefined) => actorName(id, c.contract);
  const currency = c.contract.terms.currency;
  return (
    <article>
      <header className="card">
        <h1>Dispute case</h1>
        <p className="meta">
          Contract {c.contract.contract_id.slice(0, 8)} · <span className="status">{c.contract.status}</span> · every read of
          this case is recorded
        </p>
        <p className="prose">{c.contract.terms.scope}</p>
        <ol className="milestones" aria-label="Milestones">
          {c.contract.milestones.map((m) => (
            <li key={m.milestone_id}>
              {m.title} · <MoneyText money={{ amount: m.amount, currency }} /> · <span className="status">{m.status}</span>
            </li>
          ))}
        </ol>
      </header>
      {c.disputes.map((d) => {
        const what =
          d.kind === "week" ? `Week ${d.week}` : (c.contract.milestones.find((m) => m.milestone_id === d.milestone_id)?.title ?? "Milestone");
        return (
          <section key={`${d.milestone_id ?? d.week}`} className="card" aria-label={`Dispute: ${what}`}>
            <h2>
              {what} · <MoneyText money={{ amount: d.amount, currency: d.currency }} /> held
            </h2>
            <p className="meta">
              Opened by {party(d.opened_by)} {age(d.age_seconds)} ago
            </p>
            <blockquote>{d.reason}</blockquote>
            <ResolveForm contractId={c.contract.contract_id} dispute={d} />
          </section>
        );
      })}
      <section className="card" aria-labelledby="room-heading">
        <h2 id="room-heading">Work room</h2>
        {c.messages.length === 0 ? <Empty>No messages in the work room.</Empty> : null}
        <ol className="messages" aria-label="Work room messages">
          {c.messages.map((m) => (
            <li key={m.message_id}>
              <strong>{capitalized(party(m.sender_id))}:</strong> <span className="prose">{m.text}</span>
              <small className="meta"> · {new Date(m.sent_at).toLocaleString()}</small>
            </li>
          ))}
        </ol>
      </section>
      <section className="card" aria-labelledby="files-heading">
        <h2 id="files-heading">Files</h2>
        {c.files.length === 0 ? <Empty>No files delivered or sent.</Empty> : null}
        <ul className="files" aria-label="Case files">
          {c.files.map((f) => (
            <li key={f.file_id}>
              <CaseFile contractId={c.contract.contract_id} file={f} /> <small className="meta">from {party(f.owner_id)}</small>
            </li>
          ))}
        </ul>
      </section>
      <section className="card" aria-labelledby="escrow-heading">
        <h2 id="escrow-heading">Escrow</h2>
        <EscrowHolds holds={c.escrow.holds} titles={milestoneTitles(c.contract.milestones)} />
      </section>
      <section className="card" aria-labelledby="history-heading">
        <h2 id="history-heading">History</h2>
        <ol className="history">
          {c.history.map((h, i) => (
            <li key={`${h.at}-${i}`}>
              <time dateTime={h.at}>{new Date(h.at).toLocaleString()}</time> · {h.type} by {party(h.actor_id)}
            </li>
          ))}
        </ol>
      </section>
    </article>
  );
}

function CaseFile({ contractId, file }: { contractId: string; file: Schemas["FileResponse"] }) {
  const { download: save, error } = useDownload();
  const download = () =>
    save(
      () =>
        api.GET("/api/v1/admin/disputes/{contract_id}/files/{file_id}/content", {
          params: { path: { contract_id: contractId, file_id: file.file_id } },
          parseAs: "blob",
        }),
      file.filename,
    );
  return (
    <>
      <button type="button" className="link" onClick={() => void download()}>
        {file.filename}
      </button>
      <ProblemNote error={error} onRetry={() => void download()} />
    </>
  );
}

/** Decides one dispute. The case is not read again after: a contract with no
 * open dispute left is no longer a case an administrator may read. */
function ResolveForm({ contractId, dispute }: { contractId: string; dispute: Dispute }) {
  const { run, pending, error, fieldErrors } = useCommand();
  const [local, setLocal] = useState<FieldErrors>({});
  const [resolved, setResolved] = useState(false);
  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const share = parseMoney(String(form.get("to_seller") ?? ""), dispute.currency);
    if (!share.ok || share.amount > dispute.amount) {
      setLocal({ to_seller: [share.ok ? "At most what is held." : share.error] });
      return;
    }
    setLocal({});
    const body = { to_seller: share.amount, note: String(form.get("note") ?? "") };
    const done = await run((headers) =>
      dispute.kind === "week"
        ? api.POST("/api/v1/contracts/{contract_id}/weeks/{week}/resolve", {
            params: { path: { contract_id: contractId, week: String(dispute.week) }, header: headers },
            body,
          })
        : api.POST("/api/v1/contracts/{contract_id}/milestones/{milestone_id}/resolve", {
            params: { path: { contract_id: contractId, milestone_id: String(dispute.milestone_id) }, header: headers },
            body,
          }),
    );
    if (done) setResolved(true);
  }
  if (resolved) {
    return (
      <p role="status">
        Resolved: the money held moves as you decided. <Link to="/admin/disputes">Back to the open disputes</Link>
      </p>
    );
  }
  return (
    <form onSubmit={submit} noValidate aria-label="Resolve the dispute">
      <Field
        label={`To the seller (${dispute.currency})`}
        name="to_seller"
        errors={{ ...fieldErrors, ...local }}
        hint="The rest goes back to the buyer."
      >
        {(p) => <input {...p} inputMode="decimal" required />}
      </Field>
      <Field label="Note to both parties" name="note" errors={fieldErrors}>
        {(p) => <textarea {...p} rows={2} />}
      </Field>
      <ProblemNote error={error} />
      <button type="submit" className="primary" disabled={pending}>
        Resolve
      </button>
    </form>
  );
}
