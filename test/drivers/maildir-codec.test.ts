import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DriverError } from "../../src/drivers/driver.js";
import { fsError } from "../../src/drivers/maildir/errors.js";
import {
  decodeLetters,
  encodeFlags,
  formatFileName,
  newBaseName,
  parseFileName,
  sanitizeHost,
} from "../../src/drivers/maildir/filename.js";
import { KeywordTable } from "../../src/drivers/maildir/keywords.js";
import { headerEnd } from "../../src/drivers/maildir/maildir-folder.js";
import { normalizeFlags } from "../../src/model/types.js";

const SYSTEM = ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "$Forwarded"];

describe("filename codec", () => {
  it("parseFileName() splits key and letters; a name without :2, is all key", () => {
    expect(parseFileName("1700000000.M1P2Q3.host,S=12:2,FS")).toEqual({
      key: "1700000000.M1P2Q3.host,S=12",
      letters: "FS",
    });
    expect(parseFileName("1700000000.M1P2Q3.host")).toEqual({ key: "1700000000.M1P2Q3.host", letters: "" });
    expect(parseFileName("odd:name")).toEqual({ key: "odd:name", letters: "" });
    expect(parseFileName("k:2,")).toEqual({ key: "k", letters: "" });
  });

  it("formatFileName() sorts and deduplicates letters", () => {
    expect(formatFileName("k", "SbFaS")).toBe("k:2,FSab");
    expect(formatFileName("k", "")).toBe("k:2,");
  });

  it("maps the six system letters and keywords from the table", () => {
    const table = KeywordTable.parse("0 $Junk\n1 work\n");
    const enc = encodeFlags(["\\Seen", "\\Draft", "$Forwarded", "work", "$Junk", "\\Recent"], table);
    expect(enc).toEqual({ letters: "DPSab", dropped: ["\\Recent"] });
    expect(decodeLetters("SDPba", table)).toEqual({
      flags: ["$Forwarded", "$Junk", "\\Draft", "\\Seen", "work"],
      unknown: "",
    });
    expect(decodeLetters("RTFz X", table)).toEqual({
      flags: ["\\Answered", "\\Deleted", "\\Flagged"],
      unknown: " Xz",
    });
  });

  it("round-trips any flag set through a file name (property)", () => {
    const keyword = fc.stringMatching(/^[A-Za-z$][A-Za-z0-9_$-]{0,12}$/);
    fc.assert(
      fc.property(
        fc.uniqueArray(keyword, { maxLength: 26, comparator: (a, b) => a.toLowerCase() === b.toLowerCase() }),
        fc.subarray(SYSTEM),
        fc.stringMatching(/^[0-9]{10}\.M[0-9]{1,6}P[0-9]{1,7}Q[0-9]{1,4}R[0-9a-f]{16}\.[a-z0-9.-]{1,20}$/),
        (keywords, system, key) => {
          const table = new KeywordTable();
          const kws = keywords.filter((k) => k !== "$Forwarded");
          for (const k of kws) expect(table.add(k)).toBe(true);
          const flags = [...system, ...kws];
          const { letters, dropped } = encodeFlags(flags, table);
          expect(dropped).toEqual([]);
          const name = formatFileName(key, letters);
          const parsed = parseFileName(name);
          expect(parsed.key).toBe(key);
          expect(parsed.letters).toBe([...parsed.letters].sort().join(""));
          expect(decodeLetters(parsed.letters, table).flags).toEqual(normalizeFlags(flags));
          // The table survives its file format.
          expect(KeywordTable.parse(table.format()).format()).toBe(table.format());
        },
      ),
    );
  });
});

describe("KeywordTable", () => {
  it("add() takes the lowest free index and refuses a 27th keyword or a bad atom", () => {
    const table = KeywordTable.parse("1 b\n3 d\n");
    expect(table.add("x")).toBe(true);
    expect(table.letterOf("x")).toBe("a");
    expect(table.letterOf("B")).toBe("b");
    expect(table.add("has space")).toBe(false);
    expect(table.add("\\Seen")).toBe(false);
    for (let i = 0; i < 23; i++) expect(table.add(`k${i}`)).toBe(true);
    expect(table.add("one-too-many")).toBe(false);
    expect(table.format().split("\n")[0]).toBe("0 x");
  });
});

describe("newBaseName()", () => {
  it("gives unique names without path or info separators", () => {
    const names = new Set(Array.from({ length: 1000 }, () => newBaseName()));
    expect(names.size).toBe(1000);
    for (const n of names) expect(n).toMatch(/^\d+\.M\d+P\d+Q\d+R[0-9a-f]{16}\.[^/:]+$/);
  });

  it("sanitizeHost() escapes / : , and non-ASCII", () => {
    expect(sanitizeHost("a/b:c,d.example")).toBe("a\\057b\\072c\\054d.example");
    expect(sanitizeHost("hé")).toBe("h\\303\\251");
    expect(sanitizeHost("")).toBe("localhost");
  });
});

describe("headerEnd()", () => {
  const b = (s: string) => Buffer.from(s, "latin1");
  it("finds the first empty line, LF or CRLF", () => {
    expect(headerEnd(b("A: 1\nB: 2\n\nbody"))).toBe(11);
    expect(headerEnd(b("A: 1\r\nB: 2\r\n\r\nbody"))).toBe(14);
    expect(headerEnd(b("\r\nbody"))).toBe(2);
    expect(headerEnd(b("\nbody"))).toBe(1);
    expect(headerEnd(b("A: 1\r\nno end"))).toBe(-1);
  });
});

describe("fsError()", () => {
  const errno = (code: string) => Object.assign(new Error(`${code}: boom`), { code });
  it("widens disk failures on write to the store, keeps the cause and names the path", () => {
    const cause = errno("ENOSPC");
    const err = fsError(cause, {
      action: "write message file",
      path: "/m/tmp/x",
      scope: "folder",
      writing: true,
    });
    expect(err).toBeInstanceOf(DriverError);
    expect(err).toMatchObject({ scope: "store", retryable: false, code: "ENOSPC", cause });
    expect(err.message).toBe('Cannot write message file "/m/tmp/x": no space left on device (ENOSPC)');
    expect(fsError(errno("EIO"), { action: "w", path: "/p", scope: "message", writing: true }).scope).toBe(
      "store",
    );
  });

  it("keeps the given scope for reads and for a missing message", () => {
    expect(fsError(errno("EIO"), { action: "read", path: "/p", scope: "message" }).scope).toBe("message");
    expect(
      fsError(errno("ENOENT"), { action: "rename", path: "/p", scope: "message", writing: true }),
    ).toMatchObject({
      scope: "message",
      code: "ENOENT",
    });
    expect(fsError(errno("EMFILE"), { action: "open", path: "/p", scope: "message" }).retryable).toBe(true);
  });
});
