/** Uploads: hash, createUpload, then one PUT or (above the server's threshold) S3 multipart.
 * A multipart upload survives a reload: its idempotency key is kept in storage under the file's
 * hash, so choosing the same file again replays createUpload (same media), asks uploadProgress
 * which parts S3 already has, and sends only the missing ones. */

import {
  AbortUploadDocument,
  CompleteUploadDocument,
  CreateUploadDocument,
  UploadPartUrlsDocument,
  UploadProgressDocument,
  type TypedDocument,
} from "./generated/documents.js";
import type { CreateUploadMutation, MediaFieldsFragment, Visibility } from "./generated/graphql.js";
import { CancelledError, ConflictError } from "./errors.js";
import { sha256Hex } from "./hash.js";
import { send } from "./transfer.js";

export type Media = MediaFieldsFragment;

/** localStorage's shape; any key-value store will do (React Native: wrap AsyncStorage). */
export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface UploadProgress {
  phase: "hashing" | "uploading" | "sent";
  loaded: number;
  total: number;
  /** Multipart only: parts S3 already had when this upload (re)started. */
  resumedParts?: number;
  partCount?: number;
}

export interface UploadOptions {
  filename?: string;
  contentType?: string;
  title?: string;
  tags?: string[];
  visibility?: Visibility;
  /** Defaults to a fresh key, or the stored one when this file's multipart upload is resumed. */
  idempotencyKey?: string;
  onProgress?(progress: UploadProgress): void;
  /** The media record exists (PENDING): subscribe to its status from here. Return a promise to
   * hold the bytes back until it settles (e.g. until mediaStatus has answered with PENDING, so
   * that no state is missed). */
  onCreated?(media: Media): void | Promise<void>;
  /** Where resumable uploads are remembered; default localStorage where there is one. null: nowhere. */
  storage?: KeyValueStorage | null;
  /** Stops sending but keeps the server's upload, resumable later (as a page reload would). */
  signal?: AbortSignal;
  /** Parts sent at once. */
  concurrency?: number;
}

export interface UploadTask {
  /** The media once its bytes are in storage (still PENDING: the worker verifies them next). */
  readonly done: Promise<Media>;
  /** Stops sending; a PENDING upload is aborted on the server (its parts removed). */
  cancel(): Promise<void>;
}

type Call = <Result, Variables>(
  document: TypedDocument<Result, Variables>,
  variables: Variables,
  signal?: AbortSignal,
) => Promise<Result>;

type Part = { partNumber: number; etag: string; sha256?: string | null };
type Plan = NonNullable<CreateUploadMutation["createUpload"]["multipart"]>;

const STORAGE_PREFIX = "mediagraph.upload.";

/** A multipart upload this storage remembers: choose the same file again to resume it. */
export interface PendingUpload {
  idempotencyKey: string;
  mediaId: string;
  filename: string;
  size: number;
}

/** The unfinished multipart uploads remembered in `storage` (e.g. to offer "resume" after a reload). */
export function pendingUploads(storage: (KeyValueStorage & { length: number; key(index: number): string | null }) | null = defaultStorage() as never): PendingUpload[] {
  const found: PendingUpload[] = [];
  for (let i = 0; storage && i < storage.length; i++) {
    const key = storage.key(i);
    const value = key?.startsWith(STORAGE_PREFIX) ? storage.getItem(key) : null;
    if (value) found.push(JSON.parse(value) as PendingUpload);
  }
  return found;
}

function defaultStorage(): KeyValueStorage | null {
  try {
    return (globalThis as { localStorage?: KeyValueStorage }).localStorage ?? null;
  } catch {
    return null; // e.g. a sandboxed iframe
  }
}

function newKey(): string {
  const crypto = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (crypto?.randomUUID) return crypto.randomUUID();
  return `k-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
}

export function startUpload(call: Call, file: Blob, options: UploadOptions = {}): UploadTask {
  const controller = new AbortController();
  options.signal?.addEventListener("abort", () => controller.abort(), { once: true });
  if (options.signal?.aborted) controller.abort();
  let media: Media | null = null;
  let partInfo: Pick<UploadProgress, "resumedParts" | "partCount"> = {};
  let storageKey: string | null = null;
  const storage = options.storage === undefined ? defaultStorage() : options.storage;
  const done = run();
  done.catch(() => undefined); // the caller sees it through `done`; no unhandled rejection here

  async function run(): Promise<Media> {
    const total = file.size;
    options.onProgress?.({ phase: "hashing", loaded: 0, total });
    const sha256 = await sha256Hex(file);
    check();
    storageKey = `${STORAGE_PREFIX}${sha256}.${total}`;
    const stored = storage?.getItem(storageKey);
    let key = options.idempotencyKey ?? (stored ? (JSON.parse(stored) as { idempotencyKey: string }).idempotencyKey : newKey());
    const input = {
      filename: options.filename ?? (file as { name?: string }).name ?? "upload",
      contentType: options.contentType || file.type || "application/octet-stream",
      size: total,
      sha256,
      title: options.title,
      tags: options.tags ?? [],
      visibility: options.visibility,
    };
    let created: CreateUploadMutation["createUpload"];
    try {
      ({ createUpload: created } = await call(CreateUploadDocument, { input: { ...input, idempotencyKey: key } }, controller.signal));
    } catch (error) {
      // The remembered upload was aborted or expired: start over under a new key.
      if (!(error instanceof ConflictError) || !stored) throw error;
      storage?.removeItem(storageKey);
      key = newKey();
      ({ createUpload: created } = await call(CreateUploadDocument, { input: { ...input, idempotencyKey: key } }, controller.signal));
    }
    media = created.media;
    await options.onCreated?.(media);
    check();
    if (created.upload) {
      await send(created.upload, file, {
        signal: controller.signal,
        onProgress: (loaded) => options.onProgress?.({ phase: "uploading", loaded, total }),
      });
    } else if (created.multipart) {
      const remembered: PendingUpload = { idempotencyKey: key, mediaId: media.id, filename: input.filename, size: total };
      storage?.setItem(storageKey, JSON.stringify(remembered));
      media = await sendParts(media, created.multipart, created.replayed);
      storage?.removeItem(storageKey);
    }
    // Neither: the server already had these exact bytes COMPLETED and returned that media.
    options.onProgress?.({ phase: "sent", loaded: total, total, ...partInfo });
    return media;
  }

  async function sendParts(target: Media, plan: Plan, replayed: boolean): Promise<Media> {
    const partSize = plan.partSize;
    const finished = new Map<number, Part>();
    if (replayed) {
      const { uploadProgress } = await call(UploadProgressDocument, { mediaId: target.id }, controller.signal);
      for (const part of uploadProgress.uploadedParts) finished.set(part.partNumber, part);
    }
    const resumedParts = finished.size;
    partInfo = { resumedParts, partCount: plan.partCount };
    const missing = Array.from({ length: plan.partCount }, (_, i) => i + 1).filter((n) => !finished.has(n));
    const inFlight = new Map<number, number>();
    let sentBytes = [...finished.values()].reduce((sum, part) => sum + sizeOf(part.partNumber), 0);
    function sizeOf(partNumber: number): number {
      return Math.min(partSize, file.size - (partNumber - 1) * partSize);
    }
    const report = () => {
      const loaded = sentBytes + [...inFlight.values()].reduce((a, b) => a + b, 0);
      options.onProgress?.({ phase: "uploading", loaded, total: file.size, resumedParts, partCount: plan.partCount });
    };
    report();
    const sendOne = async (partNumber: number) => {
      const bytes = file.slice((partNumber - 1) * partSize, partNumber * partSize);
      const sha256 = await sha256Hex(bytes);
      check();
      // A URL with the part's checksum signed in: storage refuses any other bytes.
      const { uploadPartUrls } = await call(UploadPartUrlsDocument, { mediaId: target.id, parts: [{ partNumber, sha256 }] }, controller.signal);
      const etag = await send(uploadPartUrls[0].upload, bytes, {
        signal: controller.signal,
        onProgress: (loaded) => {
          inFlight.set(partNumber, loaded);
          report();
        },
      });
      inFlight.delete(partNumber);
      sentBytes += bytes.size;
      finished.set(partNumber, { partNumber, etag, sha256 });
      report();
    };
    const queue = [...missing];
    const workers = Array.from({ length: Math.min(options.concurrency ?? 3, queue.length) }, async () => {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) await sendOne(next);
    });
    await Promise.all(workers);
    check();
    const parts = [...finished.values()]
      .sort((a, b) => a.partNumber - b.partNumber)
      .map(({ partNumber, etag, sha256 }) => ({ partNumber, etag, sha256 }));
    const { completeUpload } = await call(CompleteUploadDocument, { mediaId: target.id, parts }, controller.signal);
    return completeUpload;
  }

  function check(): void {
    if (controller.signal.aborted) throw new CancelledError();
  }

  return {
    done,
    async cancel() {
      controller.abort();
      await done.catch(() => undefined);
      if (storageKey) storage?.removeItem(storageKey);
      if (media?.status === "PENDING") {
        await call(AbortUploadDocument, { mediaId: media.id }).catch(() => undefined);
      }
    },
  };
}
