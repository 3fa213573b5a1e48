import { createHash } from "node:crypto";

/**
 * Content digest used to recognise the same message on both sides: SHA-256 of the bytes with every
 * CR removed, because servers may turn bare LF into CRLF (Dovecot does) and the copy must still match.
 */
export class Digest {
  private readonly hash = createHash("sha256");
  size = 0;

  update(chunk: Uint8Array): void {
    this.size += chunk.length;
    let start = 0;
    for (let i = chunk.indexOf(13); i !== -1; i = chunk.indexOf(13, start)) {
      if (i > start) this.hash.update(chunk.subarray(start, i));
      start = i + 1;
    }
    if (start < chunk.length) this.hash.update(start === 0 ? chunk : chunk.subarray(start));
  }

  hex(): string {
    return this.hash.digest("hex");
  }
}

/** Passes a stream through unchanged while digesting it. */
export async function* digesting(
  body: AsyncIterable<Uint8Array>,
  digest: Digest,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    digest.update(chunk);
    yield chunk;
  }
}

export async function digestOf(body: AsyncIterable<Uint8Array>): Promise<string> {
  const d = new Digest();
  for await (const chunk of body) d.update(chunk);
  return d.hex();
}
