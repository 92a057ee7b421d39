import assert from "node:assert/strict";
import { test } from "node:test";
import { Pager, pages } from "../dist/index.js";

const ITEMS = Array.from({ length: 7 }, (_, i) => `m${i}`);

/** A connection over ITEMS, 3 at a time, cursors being indexes; records the `after`s asked. */
function source() {
  const asked = [];
  const fetchPage = async (after) => {
    asked.push(after);
    const start = after === null ? 0 : Number(after) + 1;
    const slice = ITEMS.slice(start, start + 3);
    const edges = slice.map((node, i) => ({ cursor: String(start + i), node }));
    return { edges, pageInfo: { hasNextPage: start + 3 < ITEMS.length, endCursor: edges.at(-1)?.cursor ?? null } };
  };
  return { asked, fetchPage };
}

test("pages() walks every page once, in order", async () => {
  const { asked, fetchPage } = source();
  const seen = [];
  for await (const page of pages(fetchPage)) seen.push(page);
  assert.deepEqual(seen, [["m0", "m1", "m2"], ["m3", "m4", "m5"], ["m6"]]);
  assert.deepEqual(asked, [null, "2", "5"]);
});

test("a Pager shares the page in flight and stops at the end", async () => {
  const { asked, fetchPage } = source();
  const pager = new Pager(fetchPage);
  const [a, b] = await Promise.all([pager.loadMore(), pager.loadMore()]);
  assert.deepEqual(a, ["m0", "m1", "m2"]);
  assert.equal(a, b);
  assert.deepEqual(await pager.loadMore(), ["m3", "m4", "m5"]);
  assert.deepEqual(await pager.loadMore(), ["m6"]);
  assert.equal(pager.hasMore, false);
  assert.deepEqual(await pager.loadMore(), []);
  assert.deepEqual(asked, [null, "2", "5"]);
});
