/** Live notifications: one EventSource per tab on the gateway's stream,
 * opened with a single-use ticket (a browser's EventSource cannot send the
 * Authorization header). A used ticket cannot reopen it, so after an error
 * the stream is opened anew with a new ticket, and listeners reload what
 * they show in case something came meanwhile. */

import { useEffect, useRef, useState } from "react";
import { Link } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { useSession } from "./session";
import { Empty, Loading, ProblemNote, useLoad } from "./ui";

export type Notification = Schemas["NotificationResponse"];
type Listener = (notification: Notification | null) => void;

const listeners = new Set<Listener>();
let source: EventSource | null = null;
let retry: ReturnType<typeof setTimeout> | null = null;
let wanted = false;

async function open(): Promise<void> {
  if (!wanted || source) return;
  try {
    const { ticket } = await unwrap(api.POST("/api/v1/me/notifications/stream-ticket"));
    if (!wanted) return;
    const stream = new EventSource(`/api/v1/me/notifications/stream?ticket=${encodeURIComponent(ticket)}`);
    source = stream;
    stream.addEventListener("open", () => {
      document.documentElement.dataset.live = "open"; // what a "live" badge (and a test) can read
      listeners.forEach((l) => l(null));
    });
    stream.addEventListener("notification", (event) => {
      const notification = JSON.parse((event as MessageEvent<string>).data) as Notification;
      listeners.forEach((l) => l(notification));
    });
    stream.addEventListener("error", () => {
      delete document.documentElement.dataset.live;
      stream.close();
      source = null;
      schedule(3000);
    });
  } catch {
    schedule(5000);
  }
}

function schedule(ms: number) {
  if (retry) clearTimeout(retry);
  retry = setTimeout(() => {
    retry = null;
    void open();
  }, ms);
}

function close() {
  wanted = false;
  delete document.documentElement.dataset.live;
  source?.close();
  source = null;
  if (retry) clearTimeout(retry);
}

/** Calls `onNotification` for every notification that arrives live (and with
 * null when the stream (re)opens: reload, something may have come meanwhile). */
export function useLiveNotifications(onNotification: Listener): void {
  const callback = useRef(onNotification);
  callback.current = onNotification;
  useEffect(() => {
    const listener: Listener = (n) => callback.current(n);
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
    };
  }, []);
}

/** Keeps the stream open while someone is signed in. */
export function NotificationStream() {
  const tokens = useSession();
  useEffect(() => {
    if (!tokens) return;
    wanted = true;
    void open();
    return close;
  }, [tokens?.user_id]);
  return null;
}

function linkOf(n: Notification): string {
  const { type, id } = n.link;
  if (!id) return "/notifications";
  if (type === "contract") return `/contracts/${id}`;
  if (type === "project") return `/projects/${id}`;
  if (type === "proposal") return "/me/proposals";
  if (type === "conversation") return `/messages/${id}`;
  return "/notifications";
}

/** The bell: unread count, and the newest live notification as a toast. */
export function NotificationBell() {
  const [unread, setUnread] = useState<number | null>(null);
  const [toast, setToast] = useState<Notification | null>(null);
  const load = () =>
    unwrap(api.GET("/api/v1/me/notifications", { params: { query: { limit: 1 } } })).then(
      (page) => setUnread(page.unread),
      () => undefined,
    );
  useEffect(() => void load(), []);
  useLiveNotifications((n) => {
    if (n) {
      setToast(n);
      setUnread((u) => (u ?? 0) + 1);
    } else void load();
  });
  return (
    <>
      <Link to="/notifications" className="bell" aria-label={`Notifications${unread ? `, ${unread} unread` : ""}`}>
        Notifications{unread ? <span className="count">{unread}</span> : null}
      </Link>
      {toast ? (
        <div className="toast" role="status" aria-live="polite">
          <Link to={linkOf(toast)} onClick={() => setToast(null)}>
            {toast.title}
          </Link>
          <button type="button" className="link" aria-label="Dismiss" onClick={() => setToast(null)}>
            ×
          </button>
        </div>
      ) : null}
    </>
  );
}

export function NotificationsPage() {
  const page = useLoad(() => unwrap(api.GET("/api/v1/me/notifications", { params: { query: { limit: 50 } } })), []);
  useLiveNotifications(() => page.reload());
  const markAll = async () => {
    await unwrap(
      api.POST("/api/v1/me/notifications/read", {
        body: { all: true },
        headers: { "Idempotency-Key": crypto.randomUUID() },
      }),
    ).catch(() => undefined);
    page.reload();
  };
  return (
    <section>
      <h1>Notifications</h1>
      {page.loading && !page.data ? <Loading what="notifications" /> : null}
      <ProblemNote error={page.error} onRetry={page.reload} />
      {page.data && page.data.items.length === 0 ? <Empty>Nothing yet.</Empty> : null}
      {page.data?.unread ? (
        <button type="button" onClick={() => void markAll()}>
          Mark all read
        </button>
      ) : null}
      <ul className="cards">
        {page.data?.items.map((n) => (
          <li key={n.notification_id} className={`card${n.read ? "" : " unread"}`}>
            <Link to={linkOf(n)}>{n.title}</Link> <small className="meta">{new Date(n.at).toLocaleString()}</small>
          </li>
        ))}
      </ul>
    </section>
  );
}
