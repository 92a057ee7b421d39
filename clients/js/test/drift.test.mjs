// Fails when schema/schema.graphql (or src/operations.graphql) and the committed generated types
// drift apart: regenerates into memory and compares with src/generated/. Fix: `npm run codegen`.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { generate, generateDocuments } from "../scripts/codegen.mjs";

const committed = (name) => readFile(new URL(`../src/generated/${name}`, import.meta.url), "utf8");

test("generated types match the schema and the operations", async () => {
  const folder = await mkdtemp(join(tmpdir(), "mediagraph-codegen-"));
  try {
    for (const [name, make] of [["graphql.ts", generate], ["documents.ts", generateDocuments]]) {
      await writeFile(join(folder, name), await make());
      assert.equal(
        await readFile(join(folder, name), "utf8"),
        await committed(name),
        `src/generated/${name} is stale: run \`npm run codegen\` in clients/js and commit it`,
      );
    }
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
});

test("custom scalars are mapped, never unknown", async () => {
  const types = await committed("graphql.ts");
  assert.match(types, /DateTime: \{ input: string; output: string; \}/);
  assert.match(types, /Long: \{ input: number; output: number; \}/);
  assert.doesNotMatch(types, /: \{ input: any; output: any; \}\s*\n\s*(DateTime|Long)/);
});
