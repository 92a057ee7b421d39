import assert from "node:assert/strict";
import { test } from "node:test";
import {
  BadUserInputError,
  ConflictError,
  MediagraphError,
  NotFoundError,
  RateLimitedError,
  UnauthenticatedError,
  toError,
} from "../dist/index.js";

test("each extensions.code becomes its own class", () => {
  const cases = [
    ["UNAUTHENTICATED", UnauthenticatedError],
    ["NOT_FOUND", NotFoundError],
    ["BAD_USER_INPUT", BadUserInputError],
    ["CONFLICT", ConflictError],
    ["RATE_LIMITED", RateLimitedError],
  ];
  for (const [code, Type] of cases) {
    const error = toError({ message: "m", extensions: { code } });
    assert.ok(error instanceof Type, code);
    assert.ok(error instanceof MediagraphError);
    assert.equal(error.code, code);
    assert.equal(error.name, Type.name);
  }
});

test("reason, retryAfter and requestId come from the extensions", () => {
  const error = toError({ message: "slow down", extensions: { code: "RATE_LIMITED", retryAfter: 3, requestId: "r1" } });
  assert.equal(error.retryAfter, 3);
  assert.equal(error.requestId, "r1");
  const since = toError({ message: "gone", extensions: { code: "BAD_USER_INPUT", reason: "SINCE_EXPIRED" } });
  assert.equal(since.reason, "SINCE_EXPIRED");
});

test("an unknown code stays a MediagraphError with that code", () => {
  const error = toError({ message: "m", extensions: { code: "TOO_MANY_SUBSCRIPTIONS" } });
  assert.equal(error.constructor, MediagraphError);
  assert.equal(error.code, "TOO_MANY_SUBSCRIPTIONS");
});
