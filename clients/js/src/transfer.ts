/** PUT bytes to a presigned storage URL, reporting progress: XMLHttpRequest where there is one
 * (fetch cannot report upload progress in browsers), fetch elsewhere (Node: one report at the end). */

import { CancelledError, TransferError } from "./errors.js";

export interface SignedRequest {
  url: string;
  method: string;
  headers: ReadonlyArray<{ name: string; value: string }>;
}

export interface SendOptions {
  onProgress?: (loaded: number, total: number) => void;
  signal?: AbortSignal;
}

/** Headers a browser sets itself and refuses from scripts. */
const SET_BY_THE_BROWSER = new Set(["content-length", "host"]);

/** Sends `body` as the signed request says; resolves with the response's ETag (for multipart). */
export function send(request: SignedRequest, body: Blob, options: SendOptions = {}): Promise<string> {
  if (options.signal?.aborted) return Promise.reject(new CancelledError());
  return typeof XMLHttpRequest === "function" ? sendXhr(request, body, options) : sendFetch(request, body, options);
}

function sendXhr(request: SignedRequest, body: Blob, { onProgress, signal }: SendOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(request.method, request.url);
    for (const { name, value } of request.headers) {
      if (!SET_BY_THE_BROWSER.has(name.toLowerCase())) xhr.setRequestHeader(name, value);
    }
    xhr.upload.onprogress = (event) => onProgress?.(event.loaded, body.size);
    const abort = () => xhr.abort();
    signal?.addEventListener("abort", abort, { once: true });
    const settle = () => signal?.removeEventListener("abort", abort);
    xhr.onload = () => {
      settle();
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress?.(body.size, body.size);
        resolve(xhr.getResponseHeader("ETag") ?? "");
      } else reject(new TransferError(xhr.status, xhr.responseText));
    };
    xhr.onerror = () => {
      settle();
      reject(new TransferError(0, "network error (or a CORS refusal by the bucket)"));
    };
    xhr.onabort = () => {
      settle();
      reject(new CancelledError());
    };
    xhr.send(body);
  });
}

async function sendFetch(request: SignedRequest, body: Blob, { onProgress, signal }: SendOptions): Promise<string> {
  const headers: Record<string, string> = {};
  for (const { name, value } of request.headers) {
    if (!SET_BY_THE_BROWSER.has(name.toLowerCase())) headers[name] = value;
  }
  let response: Response;
  try {
    response = await fetch(request.url, {
      method: request.method,
      headers,
      body: new Uint8Array(await body.arrayBuffer()),
      signal,
    });
  } catch (error) {
    if (signal?.aborted) throw new CancelledError();
    throw new TransferError(0, String(error));
  }
  if (!response.ok) throw new TransferError(response.status, await response.text());
  onProgress?.(body.size, body.size);
  return response.headers.get("ETag") ?? "";
}
