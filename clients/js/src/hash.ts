/** SHA-256 in hex: WebCrypto in browsers and Node ≥ 19, node:crypto's webcrypto on Node 18. */

type Subtle = { digest(algorithm: string, data: ArrayBuffer | Uint8Array): Promise<ArrayBuffer> };

let subtle: Promise<Subtle> | undefined;

function webCrypto(): Promise<Subtle> {
  const found = (globalThis as { crypto?: { subtle?: Subtle } }).crypto?.subtle;
  if (found) return Promise.resolve(found);
  // Node 18 has WebCrypto only as node:crypto's `webcrypto`. The specifier is a variable so that
  // browser bundlers leave this branch alone.
  const nodeCrypto = "node:crypto";
  return import(/* @vite-ignore */ nodeCrypto).then((mod: { webcrypto: { subtle: Subtle } }) => mod.webcrypto.subtle);
}

function hex(buffer: ArrayBuffer): string {
  return Array.from(new Uint8Array(buffer), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** SHA-256 of bytes or a Blob/File (read whole into memory: WebCrypto has no streaming digest). */
export async function sha256Hex(data: Blob | ArrayBuffer | Uint8Array): Promise<string> {
  subtle ??= webCrypto();
  const bytes = data instanceof Blob ? await data.arrayBuffer() : data;
  return hex(await (await subtle).digest("SHA-256", bytes));
}
