/** One object for an app: HTTP operations, uploads, live status and listings against one API. */

import type { Client as WsClient } from "graphql-ws";
import {
  DeleteMediaDocument,
  DeletedMediaDocument,
  MediaDocument,
  MyMediaDocument,
  RestoreMediaDocument,
  type TypedDocument,
} from "./generated/documents.js";
import type { MediaFilter } from "./generated/graphql.js";
import { request, type TokenSource } from "./http.js";
import { createLiveClient, watchMediaEvents, watchMediaStatus, type LiveHandlers, type MediaEvent } from "./live.js";
import { Pager, pages } from "./pages.js";
import { startUpload, type Media, type UploadOptions, type UploadTask } from "./upload.js";

export interface ClientOptions {
  /** The API's base URL, e.g. http://127.0.0.1:8000 (GraphQL at /graphql, WebSocket alike). */
  url: string;
  /** The access token, or a function returning the current one (called for every request). */
  token?: TokenSource;
  fetch?: typeof fetch;
  /** A WebSocket class where there is no global one (Node < 22: the `ws` package). */
  webSocketImpl?: unknown;
}

export class MediagraphClient {
  readonly endpoint: string;
  private live: WsClient | null = null;

  constructor(private readonly options: ClientOptions) {
    this.endpoint = `${options.url.replace(/\/+$/, "")}/graphql`;
  }

  /** Any operation of the generated documents (or your own TypedDocument); throws typed errors. */
  request<Result, Variables>(
    document: TypedDocument<Result, Variables>,
    variables: Variables,
    signal?: AbortSignal,
  ): Promise<Result> {
    return request({ endpoint: this.endpoint, token: this.options.token, fetch: this.options.fetch }, document, variables, signal);
  }

  upload(file: Blob, options?: UploadOptions): UploadTask {
    return startUpload((document, variables, signal) => this.request(document, variables, signal), file, options);
  }

  async media(id: string): Promise<Media | null> {
    return (await this.request(MediaDocument, { id })).media ?? null;
  }

  async deleteMedia(id: string): Promise<Media> {
    return (await this.request(DeleteMediaDocument, { id })).deleteMedia;
  }

  async restoreMedia(id: string): Promise<Media> {
    return (await this.request(RestoreMediaDocument, { id })).restoreMedia;
  }

  /** Your media, newest first, one page per `loadMore()`. */
  myMediaPager(first = 20, filter?: MediaFilter): Pager<Media> {
    return new Pager(async (after) => (await this.request(MyMediaDocument, { first, after, filter })).myMedia);
  }

  /** Your trash, newest first. */
  deletedMediaPager(first = 20): Pager<Media> {
    return new Pager(async (after) => (await this.request(DeletedMediaDocument, { first, after })).deletedMedia);
  }

  /** All of your media, page by page. */
  myMediaPages(first = 50, filter?: MediaFilter): AsyncGenerator<Media[]> {
    return pages(async (after) => (await this.request(MyMediaDocument, { first, after, filter })).myMedia);
  }

  /** One media's states, live, resumed after reconnects; returns a function that stops it. */
  watchStatus(id: string, handlers: LiveHandlers<MediaEvent>, since: string | null = null): () => void {
    return watchMediaStatus(this.liveClient(), id, handlers, since);
  }

  /** Every status change of your media, live, resumed after reconnects. */
  watchEvents(handlers: LiveHandlers<MediaEvent>, since: string | null = null): () => void {
    return watchMediaEvents(this.liveClient(), handlers, since);
  }

  /** Closes the WebSocket (if one was opened). */
  async close(): Promise<void> {
    await this.live?.dispose();
    this.live = null;
  }

  private liveClient(): WsClient {
    this.live ??= createLiveClient({
      url: this.endpoint.replace(/^http/, "ws"),
      token: this.options.token,
      webSocketImpl: this.options.webSocketImpl,
    });
    return this.live;
  }
}
