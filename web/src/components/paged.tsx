/** A cursor-paged list: its first page loaded as `useLoad` does, and "more"
 * pages appended on request, one request at a time; a page that answers
 * after the list was loaded anew (a new search, a reload) is dropped. */

import { useRef, useState } from "react";
import { ProblemNote, useLoad, type Loaded } from "./ui";

export interface Page {
  items: unknown[];
  next_cursor: string | null;
}

type Item<P extends Page> = P["items"][number];

interface Extra<P extends Page> {
  base: P | undefined;
  items: Item<P>[];
  cursor: string | null;
}

export interface Paged<P extends Page> {
  first: Loaded<P>;
  items: Item<P>[];
  hasMore: boolean;
  loadMore: () => Promise<void>;
  loadingMore: boolean;
  moreError: unknown;
}

export function usePaged<P extends Page>(fetchPage: (cursor: string | null) => Promise<P>, deps: unknown[]): Paged<P> {
  const fetcher = useRef(fetchPage);
  fetcher.current = fetchPage;
  const first = useLoad(() => fetcher.current(null), deps);
  const base = first.data;
  const latest = useRef(base);
  latest.current = base;
  const [extra, setExtra] = useState<Extra<P>>({ base: undefined, items: [], cursor: null });
  const current: Extra<P> = extra.base === base ? extra : { base, items: [], cursor: base?.next_cursor ?? null };
  const [loadingMore, setLoadingMore] = useState(false);
  const [moreError, setMoreError] = useState<unknown>(null);

  async function loadMore() {
    const { cursor } = current;
    if (!cursor || !base || loadingMore) return;
    setLoadingMore(true);
    setMoreError(null);
    try {
      const page = await fetcher.current(cursor);
      if (latest.current !== base) return; // loaded anew meanwhile
      setExtra({ base, items: [...current.items, ...page.items], cursor: page.next_cursor });
    } catch (error) {
      setMoreError(error);
    } finally {
      setLoadingMore(false);
    }
  }

  return {
    first,
    items: [...((base?.items ?? []) as Item<P>[]), ...current.items],
    hasMore: !!current.cursor,
    loadMore,
    loadingMore,
    moreError,
  };
}

/** The "more" button of a paged list, with the problem if a page failed. */
export function MoreButton<P extends Page>({ list, label }: { list: Paged<P>; label: string }) {
  if (!list.hasMore && !list.moreError) return null;
  return (
    <>
      <ProblemNote error={list.moreError} onRetry={() => void list.loadMore()} />
      {list.hasMore ? (
        <button type="button" disabled={list.loadingMore} onClick={() => void list.loadMore()}>
          {list.loadingMore ? "Loading…" : label}
        </button>
      ) : null}
    </>
  );
}
