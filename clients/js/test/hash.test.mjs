import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { test } from "node:test";
import { sha256Hex } from "../dist/index.js";

test("SHA-256 of bytes and of a Blob equals node:crypto's", async () => {
  const bytes = randomBytes(300_000);
  const expected = createHash("sha256").update(bytes).digest("hex");
  assert.equal(await sha256Hex(new Uint8Array(bytes)), expected);
  assert.equal(await sha256Hex(new Blob([bytes])), expected);
  assert.equal(await sha256Hex(new Blob([])), createHash("sha256").digest("hex"));
});
