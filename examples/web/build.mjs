// Bundles src/main.ts with the client into dist/app.js and copies the static files next to it.
// `--serve [port]` also serves dist/ (any static server will do: the page is plain files).
import { copyFile, mkdir } from "node:fs/promises";
import * as esbuild from "esbuild";

await mkdir("dist", { recursive: true });
await Promise.all(["index.html", "style.css"].map((name) => copyFile(`src/${name}`, `dist/${name}`)));
const options = {
  entryPoints: ["src/main.ts"],
  bundle: true,
  format: "esm",
  target: "es2020",
  outfile: "dist/app.js",
  sourcemap: true,
  logLevel: "warning",
};
if (process.argv.includes("--serve")) {
  const port = Number(process.argv[process.argv.indexOf("--serve") + 1]) || 5173;
  const context = await esbuild.context(options);
  await context.watch();
  await context.serve({ servedir: "dist", port, host: "127.0.0.1" });
  console.log(`sample app: http://127.0.0.1:${port}/?api=http://127.0.0.1:8000`);
} else {
  await esbuild.build(options);
}
