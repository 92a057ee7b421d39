/** Subscriptions over graphql-ws that pick up where they were after a dropped connection: each
 * event's `eventId` becomes the `since` sent on the next (re)subscribe, so nothing is missed or
 * repeated. graphql-ws re-sends the subscribe payload on every reconnect, read at send time. */

import { createClient, type Client } from "graphql-ws";
import { MediaEventsDocument, MediaStatusDocument } from "./generated/documents.js";
import type { MediaEventsSubscription, MediaStatusSubscription } from "./generated/graphql.js";
import { NetworkError, toError, type GraphQLErrorShape } from "./errors.js";
import { resolveToken, type TokenSource } from "./http.js";

export type MediaEvent = MediaStatusSubscription["mediaStatus"];

export interface LiveHandlers<Event> {
  next(event: Event): void;
  error?(error: Error): void;
  /** The server ended the subscription (mediaStatus: after COMPLETED, REJECTED, QUARANTINED, DELETED). */
  complete?(): void;
}

/** The WebSocket closed for good; `code` 4403 carries the server's reason (no token, expired…). */
export class ConnectionClosedError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
  ) {
    super(`WebSocket closed ${code}${reason ? `: ${reason}` : ""}`);
    this.name = "ConnectionClosedError";
  }
}

export interface LiveOptions {
  /** The API's GraphQL WebSocket URL (ws:// or wss://…/graphql). */
  url: string;
  token?: TokenSource;
  /** A WebSocket class where there is no global one (Node < 22: the `ws` package). */
  webSocketImpl?: unknown;
  retryAttempts?: number;
}

export function createLiveClient(options: LiveOptions): Client {
  return createClient({
    url: options.url,
    lazy: true,
    webSocketImpl: options.webSocketImpl,
    retryAttempts: options.retryAttempts ?? 20,
    connectionParams: async () => {
      const token = await resolveToken(options.token);
      return token ? { Authorization: `Bearer ${token}` } : {};
    },
    // A refusal (4403: no, bad or expired token) will not heal by retrying the same token.
    shouldRetry: (closed) => !(isCloseEvent(closed) && closed.code === 4403),
  });
}

function isCloseEvent(value: unknown): value is { code: number; reason: string } {
  return typeof value === "object" && value !== null && "code" in value && "reason" in value;
}

function asError(problem: unknown): Error {
  if (problem instanceof Error) return problem;
  if (isCloseEvent(problem)) return new ConnectionClosedError(problem.code, problem.reason);
  if (Array.isArray(problem) && problem.length) return toError(problem[0] as GraphQLErrorShape);
  return new NetworkError(String(problem));
}

function resumable<Data, Event extends { eventId: string }>(
  client: Client,
  query: string,
  variables: { since?: string | null } & Record<string, unknown>,
  pick: (data: Data) => Event,
  handlers: LiveHandlers<Event>,
): () => void {
  const payload = { query, variables: { ...variables } };
  let dispose = (): void => undefined;
  const start = () => {
    dispose = client.subscribe<Data>(payload, {
      next(result) {
        if (result.errors?.length) {
          const error = toError(result.errors[0] as GraphQLErrorShape);
          if (error.reason === "SINCE_EXPIRED" && payload.variables.since) {
            // The history is gone: start again from the current state.
            payload.variables.since = null;
            dispose();
            start();
            return;
          }
          handlers.error?.(error);
          return;
        }
        const event = pick(result.data as Data);
        payload.variables.since = event.eventId;
        handlers.next(event);
      },
      error: (problem) => handlers.error?.(asError(problem)),
      complete: () => handlers.complete?.(),
    });
  };
  start();
  return () => dispose();
}

/** Every state of one media (PENDING as CREATED, PROCESSING, then COMPLETED/REJECTED/QUARANTINED),
 * the current one at once, then the end. Returns a function that stops listening. */
export function watchMediaStatus(
  client: Client,
  id: string,
  handlers: LiveHandlers<MediaEvent>,
  since: string | null = null,
): () => void {
  return resumable<MediaStatusSubscription, MediaEvent>(
    client,
    MediaStatusDocument,
    { id, since },
    (data) => data.mediaStatus,
    handlers,
  );
}

/** Every status change of the viewer's media, live, resumed after reconnects. */
export function watchMediaEvents(
  client: Client,
  handlers: LiveHandlers<MediaEventsSubscription["mediaEvents"]>,
  since: string | null = null,
): () => void {
  return resumable<MediaEventsSubscription, MediaEventsSubscription["mediaEvents"]>(
    client,
    MediaEventsDocument,
    { since },
    (data) => data.mediaEvents,
    handlers,
  );
}

