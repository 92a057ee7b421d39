/** GraphQL over HTTP: one POST per operation, errors turned into typed exceptions. */

import type { TypedDocument } from "./generated/documents.js";
import { NetworkError, toError, type GraphQLErrorShape } from "./errors.js";

export type TokenSource = string | null | (() => string | null | Promise<string | null>);

export async function resolveToken(token: TokenSource | undefined): Promise<string | null> {
  return typeof token === "function" ? await token() : (token ?? null);
}

export interface HttpOptions {
  endpoint: string;
  token?: TokenSource;
  fetch?: typeof fetch;
}

/** Runs one operation; resolves with `data`, or throws the first error as its typed class. */
export async function request<Result, Variables>(
  options: HttpOptions,
  document: TypedDocument<Result, Variables>,
  variables: Variables,
  signal?: AbortSignal,
): Promise<Result> {
  const token = await resolveToken(options.token);
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  let response: Response;
  try {
    response = await (options.fetch ?? fetch)(options.endpoint, {
      method: "POST",
      headers,
      body: JSON.stringify({ query: document, variables }),
      signal,
    });
  } catch (error) {
    // A browser reports a CORS refusal this way too: the server's 403 says which setting to change.
    throw new NetworkError(`could not reach ${options.endpoint}: ${String(error)}`);
  }
  let body: { data?: Result | null; errors?: GraphQLErrorShape[] };
  try {
    body = await response.json();
  } catch {
    throw new NetworkError(`${options.endpoint} answered HTTP ${response.status} without a GraphQL body`, response.status);
  }
  if (body.errors?.length) throw toError(body.errors[0]);
  if (body.data == null) throw new NetworkError(`HTTP ${response.status} with no data`, response.status);
  return body.data;
}
