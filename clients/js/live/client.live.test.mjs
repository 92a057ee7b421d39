// The client against the real API (run by tests/e2e/test_js_client.py, which starts moto, Redis,
// the API with the development sign-in and the worker, and passes their address here):
//   MEDIAGRAPH_API_URL   the API's base URL
//   MEDIAGRAPH_JPEG      a real JPEG file
//   MEDIAGRAPH_PART_BYTES the server's multipart threshold and part size
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import WebSocket from "ws";
import {
  BadUserInputError,
  ConnectionClosedError,
  MediagraphClient,
  NotFoundError,
  UnauthenticatedError,
  devSignIn,
} from "../dist/index.js";

const API = process.env.MEDIAGRAPH_API_URL;
const JPEG = process.env.MEDIAGRAPH_JPEG;
const PART = Number(process.env.MEDIAGRAPH_PART_BYTES);
if (!API || !JPEG || !PART) throw new Error("set MEDIAGRAPH_API_URL, MEDIAGRAPH_JPEG and MEDIAGRAPH_PART_BYTES");

/** A `ws` WebSocket that remembers every instance and every subscribe it sent. */
function recordingSocket() {
  const sockets = [];
  const subscribes = [];
  class Recording extends WebSocket {
    constructor(...args) {
      super(...args);
      sockets.push(this);
    }
    send(data, ...rest) {
      const message = JSON.parse(String(data));
      if (message.type === "subscribe") subscribes.push(message.payload.variables);
      return super.send(data, ...rest);
    }
  }
  return { Recording, sockets, subscribes };
}

/** Events of one subscription until it completes (or `until` says stop). */
function collect(start, until = () => false) {
  return new Promise((resolve, reject) => {
    const events = [];
    const stop = start({
      next(event) {
        events.push(event);
        if (until(event, events)) {
          stop();
          resolve(events);
        }
      },
      error: reject,
      complete: () => resolve(events),
    });
  });
}

async function signedIn(user, extra = {}) {
  const session = await devSignIn(API, user);
  assert.equal(session.user, user);
  assert.ok(session.expiresIn > 0);
  return new MediagraphClient({ url: API, token: session.token, webSocketImpl: WebSocket, ...extra });
}

test("upload a JPEG, watch it become COMPLETED, list, delete and restore it", async () => {
  const client = await signedIn(`live-${Date.now()}`);
  try {
    const bytes = await readFile(JPEG);
    const progress = [];
    let created;
    const task = client.upload(new Blob([bytes], { type: "image/jpeg" }), {
      filename: "photo.jpg",
      storage: null,
      onProgress: (p) => progress.push(p),
      onCreated: (media) => (created = media),
    });
    const sent = await task.done;
    assert.equal(created.status, "PENDING");
    assert.equal(sent.id, created.id);
    assert.deepEqual(progress.at(-1), { phase: "sent", loaded: bytes.length, total: bytes.length });
    assert.ok(progress.some((p) => p.phase === "hashing"));

    const events = await collect((handlers) => client.watchStatus(sent.id, handlers));
    const types = events.map((event) => event.type);
    assert.equal(types.at(-1), "COMPLETED", types.join());
    assert.ok(events.at(-1).media.url, "a COMPLETED media has a URL");
    assert.equal(events.at(-1).occurredAt.constructor, String); // DateTime travels as a string
    assert.equal(typeof events.at(-1).media.size, "number"); // Long as a number

    const listed = await client.myMediaPager(10).loadMore();
    assert.ok(listed.some((media) => media.id === sent.id));
    assert.equal((await client.deleteMedia(sent.id)).status, "DELETED");
    assert.ok((await client.deletedMediaPager().loadMore()).some((media) => media.id === sent.id));
    assert.equal((await client.restoreMedia(sent.id)).status, "COMPLETED");
  } finally {
    await client.close();
  }
});

test("a multipart upload stopped after its first part resumes with only the missing parts", async () => {
  const client = await signedIn(`live-multipart-${Date.now()}`);
  const memory = new Map();
  const storage = {
    getItem: (key) => memory.get(key) ?? null,
    setItem: (key, value) => memory.set(key, value),
    removeItem: (key) => memory.delete(key),
  };
  const file = new Blob([randomBytes(2 * PART + 1234)], { type: "video/mp4" });
  const stop = new AbortController();
  const first = client.upload(file, {
    filename: "big.bin",
    storage,
    concurrency: 1,
    signal: stop.signal,
    onProgress: (p) => {
      if (p.phase === "uploading" && p.loaded >= PART) stop.abort(); // like a reload mid-way
    },
  });
  await assert.rejects(first.done, { name: "CancelledError" });
  assert.equal(memory.size, 1, "the upload is remembered for resuming");

  const progress = [];
  const second = client.upload(file, { filename: "big.bin", storage, onProgress: (p) => progress.push(p) });
  const media = await second.done;
  const resumed = progress.find((p) => p.phase === "uploading");
  assert.equal(resumed.partCount, 3);
  assert.ok(resumed.resumedParts >= 1, JSON.stringify(resumed));
  assert.equal(resumed.loaded, resumed.resumedParts * PART);
  assert.equal(media.status, "PENDING");
  assert.equal(memory.size, 0, "forgotten once complete");
  await client.close();
});

test("cancel aborts the upload on the server", async () => {
  const client = await signedIn(`live-cancel-${Date.now()}`);
  let created;
  const task = client.upload(new Blob([randomBytes(2 * PART)], { type: "video/mp4" }), {
    storage: null,
    concurrency: 1,
    onCreated: (media) => (created = media),
    onProgress: (p) => {
      if (p.phase === "uploading" && p.loaded > 0) void task.cancel();
    },
  });
  await assert.rejects(task.done, { name: "CancelledError" });
  await task.cancel();
  assert.equal(await client.media(created.id), null);
});

test("a dropped WebSocket resumes the subscription with since: no gap, no duplicate", async () => {
  const { Recording, sockets, subscribes } = recordingSocket();
  const client = await signedIn(`live-resume-${Date.now()}`, { webSocketImpl: Recording });
  const bytes = await readFile(JPEG);
  const seen = [];
  let dropped = false;
  let uploadSecond;
  const done = collect(
    (handlers) => client.watchEvents(handlers),
    (event, events) => {
      seen.push(event.eventId);
      if (!dropped) {
        dropped = true;
        sockets[0].terminate(); // the network goes away; graphql-ws reconnects
        uploadSecond = readFile(process.env.MEDIAGRAPH_JPEG_2).then((other) => client.upload(new Blob([other], { type: "image/jpeg" }), { storage: null }).done);
      }
      return events.filter((e) => e.type === "COMPLETED").length === 2;
    },
  );
  await client.upload(new Blob([bytes], { type: "image/jpeg" }), { storage: null }).done;
  await done;
  await uploadSecond;
  assert.ok(sockets.length >= 2, "reconnected");
  assert.equal(new Set(seen).size, seen.length, "no event twice");
  assert.equal(subscribes[0].since, null);
  assert.equal(subscribes[1].since, seen[0], "resubscribed after the last event received");
  await client.close();
});

test("errors arrive typed by extensions.code", async () => {
  const anonymous = new MediagraphClient({ url: API });
  await assert.rejects(anonymous.myMediaPager().loadMore(), UnauthenticatedError);
  const client = await signedIn(`live-errors-${Date.now()}`);
  await assert.rejects(client.deleteMedia("not-a-media"), (error) => error instanceof NotFoundError || error instanceof BadUserInputError);
  await assert.rejects(devSignIn(API, "not a name!"), BadUserInputError);
  const bad = new MediagraphClient({ url: API, token: "not-a-jwt", webSocketImpl: WebSocket });
  await assert.rejects(bad.myMediaPager().loadMore(), UnauthenticatedError); // HTTP 401
  const refused = await collect((handlers) => bad.watchEvents(handlers)).catch((error) => error);
  assert.ok(refused instanceof ConnectionClosedError, String(refused));
  assert.equal(refused.code, 4403);
  assert.equal(refused.reason, "Invalid token");
  await bad.close();
});
