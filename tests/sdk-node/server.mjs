// A Tessera server on the generated tiny fixtures, for the Node SDK tests
// (run after `cargo build`; uses target/debug/tessera or TESSERA_BIN).
import { spawn, execFileSync } from "node:child_process";
import { deflateSync, crc32 } from "node:zlib";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "../..");
const bin = process.env.TESSERA_BIN ?? path.join(root, "target/debug/tessera");
const fixtures = path.join(root, "target/sdk-fixtures");

export function png(w, h, [r, g, b]) {
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(w * 3).map((_, i) => [r, g, b][i % 3])]);
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([Buffer.from(type), data])) >>> 0);
    return Buffer.concat([len, Buffer.from(type), data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(Buffer.concat(Array(h).fill(row)))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** Starts a server; resolves to { base, process } once the model is ready. */
export async function startServer(...extra) {
  execFileSync(bin, ["fixtures", fixtures]);
  const server = spawn(bin, [
    "--model", path.join(fixtures, "tiny-text.gguf"),
    "--mmproj", path.join(fixtures, "tiny-mmproj-mlp.gguf"),
    "--port", "0", "-t", "2", ...extra,
  ], { env: { ...process.env, TESSERA_LOG: "info", NO_COLOR: "1" } });
  const base = await new Promise((resolve, reject) => {
    let log = "";
    let url;
    server.stdout.on("data", (d) => {
      log += d;
      url ??= log.match(/listening on (http:\/\/[0-9.:]+)/)?.[1];
      if (url && log.includes("model ready")) resolve(url);
    });
    server.stderr.on("data", (d) => (log += d));
    server.on("exit", () => reject(new Error("server did not start:\n" + log)));
  });
  return { base, process: server };
}
