/** The development sign-in (`POST /dev/sign-in`): only `mediagraph dev` answers it. */

import { NetworkError, toError } from "./errors.js";

export interface DevSession {
  token: string;
  user: string;
  /** Seconds the token lives. */
  expiresIn: number;
}

export async function devSignIn(apiUrl: string, user: string, fetchImpl: typeof fetch = fetch): Promise<DevSession> {
  const url = `${apiUrl.replace(/\/+$/, "")}/dev/sign-in`;
  let response: Response;
  try {
    response = await fetchImpl(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user }),
    });
  } catch (error) {
    throw new NetworkError(`could not reach ${url}: ${String(error)}`);
  }
  if (response.status === 404) {
    throw new NetworkError("no development sign-in here: it exists only under `mediagraph dev`", 404);
  }
  const body = await response.json();
  if (!response.ok) throw toError(body.errors?.[0] ?? { message: `HTTP ${response.status}` });
  return body as DevSession;
}
