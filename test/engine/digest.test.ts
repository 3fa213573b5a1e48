import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Digest, digestOf } from "../../src/engine/digest.js";

/** The definition, byte by byte: SHA-256 of the bytes with every CR (13) left out. */
function reference(bytes: Uint8Array): string {
  return createHash("sha256")
    .update(Uint8Array.from([...bytes].filter((b) => b !== 13)))
    .digest("hex");
}

/** A deterministic stream of bytes rich in CR, LF, CRLF runs and 8-bit bytes. */
function bytesOf(seed: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const r = (x >>> 0) % 16;
    out[i] = r < 3 ? 13 : r < 5 ? 10 : r === 5 ? 0 : r === 6 ? 0xff : 32 + ((x >>> 8) % 95);
  }
  return out;
}

describe("Digest", () => {
  it("equals SHA-256 of the bytes without CRs, however the bytes are cut into chunks", async () => {
    for (let seed = 1; seed <= 40; seed++) {
      const bytes = bytesOf(seed, (seed * 997) % 5000);
      const want = reference(bytes);
      // Cuts at every kind of place: inside CRLF, right after a CR, chunks of one byte.
      for (const step of [1, 2, 3, 7, 64, 1000, 1 << 20]) {
        const d = new Digest();
        for (let i = 0; i < bytes.length; i += step) d.update(bytes.subarray(i, i + step));
        expect(d.hex(), `seed ${seed}, chunks of ${step}`).toBe(want);
        expect(d.size).toBe(bytes.length);
      }
      // A plain Uint8Array view into a larger buffer, and a Buffer, give the same digest.
      const framed = new Uint8Array(bytes.length + 20);
      framed.set(bytes, 10);
      const d = new Digest();
      d.update(framed.subarray(10, 10 + bytes.length));
      expect(d.hex()).toBe(want);
      expect(
        await digestOf(
          (async function* () {
            yield Buffer.from(bytes);
          })(),
        ),
      ).toBe(want);
    }
  });

  it("a message of CRs only, an empty one, and one without any CR", () => {
    for (const bytes of [new Uint8Array(300).fill(13), new Uint8Array(0), Buffer.from("a\nb\n\u00e9\n")]) {
      const d = new Digest();
      d.update(bytes);
      expect(d.hex()).toBe(reference(bytes));
    }
  });
});
