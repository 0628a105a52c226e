/** Conversations (one per proposal, one per contract) and their messages,
 * with files; new messages arrive through the live notifications. */

import { useState, type FormEvent } from "react";
import { Link, useParams } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { chosenFiles, FileList, useUploads } from "../components/files";
import { useLiveNotifications } from "../components/notifications";
import { useSession } from "../components/session";
import { Empty, Field, Loading, ProblemNote, useCommand, useLoad } from "../components/ui";

export function ConversationsPage() {
  const list = useLoad(() => unwrap(api.GET("/api/v1/me/conversations")), []);
  useLiveNotifications(() => list.reload());
  return (
    <section>
      <h1>Messages</h1>
      {list.loading && !list.data ? <Loading what="your conversations" /> : null}
      <ProblemNote error={list.error} onRetry={list.reload} />
      {list.data && list.data.items.length === 0 ? <Empty>No conversations yet.</Empty> : null}
      <ul className="cards">
        {list.data?.items.map((c) => (
          <li key={c.conversation_id} className={`card${c.unread ? " unread" : ""}`}>
            <Link to={`/messages/${c.conversation_id}`}>
              {c.kind === "contract" ? "Contract" : "Proposal"} conversation
            </Link>{" "}
            {c.unread ? <span className="badge">{c.unread} new</span> : null}
          </li>
        ))}
      </ul>
    </section>
  );
}

export function ConversationPage() {
  const { conversationId = "" } = useParams();
  const tokens = useSession();
  const path = { conversation_id: conversationId };
  const messages = useLoad(
    () => unwrap(api.GET("/api/v1/conversations/{conversation_id}/messages", { params: { path, query: { limit: 100, order: "asc" } } })),
    [conversationId],
  );
  useLiveNotifications(() => messages.reload());
  const { run, pending, error, fieldErrors } = useCommand();
  const { upload, uploading, uploadError } = useUploads();
  // What this page sent shows at once; the list catches up when its view has it.
  const [sentHere, setSentHere] = useState<Schemas["MessageResponse"][]>([]);
  const loaded = messages.data?.items ?? [];
  const shown = [...loaded, ...sentHere.filter((m) => !loaded.some((l) => l.message_id === m.message_id))];

  async function send(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const formElement = event.currentTarget;
    const form = new FormData(formElement);
    const file_ids = await upload(chosenFiles(form), "message");
    if (!file_ids) return;
    const sent = await run((headers) =>
      api.POST("/api/v1/conversations/{conversation_id}/messages", {
        params: { path },
        headers,
        body: { text: String(form.get("text")), file_ids },
      }),
    );
    if (sent) {
      setSentHere((list) => [...list, sent]);
      formElement.reset();
      messages.reload();
      void api.POST("/api/v1/conversations/{conversation_id}/read", {
        params: { path },
        body: { up_to: sent.seq },
        headers: { "Idempotency-Key": crypto.randomUUID() },
      });
    }
  }

  return (
    <section>
      <h1>Conversation</h1>
      {messages.loading && !messages.data ? <Loading what="messages" /> : null}
      <ProblemNote error={messages.error} onRetry={messages.reload} />
      {messages.data && shown.length === 0 ? <Empty>No messages yet: say hello.</Empty> : null}
      <ol className="messages" aria-label="Messages">
        {shown.map((m) => (
          <li key={m.message_id} className={m.sender_id === tokens?.user_id ? "mine" : "theirs"}>
            <span className="prose">{m.text}</span>
            <FileList ids={m.file_ids} label="Files" />
            <small className="meta"> · {new Date(m.sent_at).toLocaleTimeString()}</small>
          </li>
        ))}
      </ol>
      <form onSubmit={send} noValidate className="card">
        <Field label="Message" name="text" errors={fieldErrors}>
          {(p) => <textarea {...p} rows={2} required />}
        </Field>
        <Field label="Files" name="file_ids" errors={fieldErrors}>
          {(p) => <input {...p} name="files" type="file" multiple />}
        </Field>
        <ProblemNote error={uploadError ?? error} />
        <button type="submit" className="primary" disabled={pending || uploading}>
          Send
        </button>
      </form>
    </section>
  );
}
