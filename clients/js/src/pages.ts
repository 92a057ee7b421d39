/** Relay connections page by page: an async iterator, and a Pager for infinite scroll. */

export interface Connection<Node> {
  edges: ReadonlyArray<{ cursor: string; node: Node }>;
  pageInfo: { hasNextPage: boolean; endCursor?: string | null };
}

export type PageFetcher<Node> = (after: string | null) => Promise<Connection<Node>>;

/** Yields page after page (arrays of nodes) until the last one. */
export async function* pages<Node>(fetchPage: PageFetcher<Node>): AsyncGenerator<Node[]> {
  let after: string | null = null;
  for (;;) {
    const page: Connection<Node> = await fetchPage(after);
    yield page.edges.map((edge) => edge.node);
    if (!page.pageInfo.hasNextPage || !page.pageInfo.endCursor) return;
    after = page.pageInfo.endCursor;
  }
}

/** Loads one page per `loadMore()`; concurrent calls share the request in flight (a scroll
 * listener may fire twice before the first page arrives). */
export class Pager<Node> {
  private after: string | null = null;
  private inFlight: Promise<Node[]> | null = null;
  hasMore = true;

  constructor(private readonly fetchPage: PageFetcher<Node>) {}

  loadMore(): Promise<Node[]> {
    if (!this.hasMore) return Promise.resolve([]);
    this.inFlight ??= this.fetchPage(this.after)
      .then((page) => {
        this.after = page.pageInfo.endCursor ?? null;
        this.hasMore = page.pageInfo.hasNextPage && !!page.pageInfo.endCursor;
        return page.edges.map((edge) => edge.node);
      })
      .finally(() => {
        this.inFlight = null;
      });
    return this.inFlight;
  }
}
