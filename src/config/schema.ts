/**
 * The shape of config.toml as zod schemas. Every leaf carries its own error message in the form
 * `expected <what>, got <value>`; `load-config.ts` adds the file, line and key. Values of secret keys
 * are never echoed, only their type.
 */
import * as z from "zod";
import { splitCommandLine } from "./split-command.js";

interface RawIssue {
  input?: unknown;
}

/** A short, safe rendering of a TOML value for messages. */
export function describeValue(value: unknown, secret = false): string {
  if (value === undefined) return "nothing";
  if (Array.isArray(value)) return "an array";
  if (value instanceof Date) return "a date";
  if (typeof value === "object" && value !== null) {
    return value.constructor?.name === "TomlDate" ? "a date" : "a table";
  }
  if (secret) return `a ${typeof value}`;
  if (typeof value === "string") {
    const shown = value.length > 60 ? `${value.slice(0, 57)}...` : value;
    return JSON.stringify(shown);
  }
  return String(value);
}

function expecting(what: string, secret = false) {
  return (iss: RawIssue): string =>
    iss.input === undefined
      ? `required key is missing (expected ${what})`
      : `expected ${what}, got ${describeValue(iss.input, secret)}`;
}

function text(what = "a non-empty string", secret = false) {
  const error = expecting(what, secret);
  return z.string({ error }).min(1, { error });
}

function integer(what: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  const error = expecting(what);
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  const what =
    values.length === 1
      ? JSON.stringify(values[0])
      : `one of ${values.map((v) => JSON.stringify(v)).join(", ")}`;
  return z.enum(values, { error: expecting(what) });
}

const patterns = z.array(text("a folder pattern (a non-empty string)"), {
  error: expecting('an array of folder patterns, e.g. ["*"]'),
});

export const ACCOUNT_NAME = /^[A-Za-z0-9._-]+$/;

const rename = z
  .record(text("a folder name"), text("a folder name"), { error: expecting("a table of folder names") })
  .superRefine((map, ctx) => {
    const seen = new Map<string, string>();
    for (const [from, to] of Object.entries(map)) {
      const other = seen.get(to);
      if (other !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: [from],
          message: `must be one-to-one: ${JSON.stringify(other)} and ${JSON.stringify(from)} are both renamed to ${JSON.stringify(to)}`,
        });
      } else seen.set(to, from);
    }
  });

/** Options an account may set, and `[defaults]` may set for all accounts. */
const accountOptionsShape = {
  stateDir: text("a directory path").optional(),
  maxage: integer("a positive whole number of days", 1).optional(),
  conflict: oneOf(["keep", "left", "right", "fail", "ask"]).optional(),
  maxDelete: z
    .number({ error: expecting("a percentage from 0 to 100") })
    .min(0, { error: expecting("a percentage from 0 to 100") })
    .max(100, { error: expecting("a percentage from 0 to 100") })
    .optional(),
  include: patterns.optional(),
  exclude: patterns.optional(),
  rename: rename.optional(),
};

const CREDENTIALS = ["password", "passwordCommand", "oauth2TokenCommand"] as const;

const imapShape = {
  type: z.literal("imap"),
  host: text("a host name"),
  port: integer("a number from 1 to 65535", 1, 65535).optional(),
  tls: oneOf(["implicit", "starttls", "none"]).optional(),
  tlsCaFile: text("a file path").optional(),
  user: text("a user name"),
  password: text("a non-empty string", true).optional(),
  passwordCommand: text("a command").optional(),
  passwordShell: z.boolean({ error: expecting("true or false") }).optional(),
  oauth2TokenCommand: text("a command").optional(),
  connectTimeoutMs: integer("a positive number of milliseconds", 1).optional(),
  commandTimeoutMs: integer("a positive number of milliseconds", 1).optional(),
};

const imapStore = z.strictObject(imapShape).superRefine((store, ctx) => {
  const set = CREDENTIALS.filter((k) => store[k] !== undefined);
  if (set.length === 0) {
    ctx.addIssue({
      code: "custom",
      path: [],
      message: `no credentials: set one of ${CREDENTIALS.join(", ")}`,
    });
  } else if (set.length > 1) {
    ctx.addIssue({
      code: "custom",
      path: [set[1]!],
      message: `set only one of ${CREDENTIALS.join(", ")} (found ${set.join(" and ")})`,
    });
  }
  for (const key of ["passwordCommand", "oauth2TokenCommand"] as const) {
    const command = store[key];
    if (command === undefined || (key === "passwordCommand" && store.passwordShell)) continue;
    try {
      if (splitCommandLine(command).length === 0) throw new Error("empty command");
    } catch (err) {
      ctx.addIssue({
        code: "custom",
        path: [key],
        message: `cannot split into arguments: ${(err as Error).message}`,
      });
    }
  }
});

const maildirShape = {
  type: z.literal("maildir"),
  path: text("a directory path"),
  layout: oneOf(["maildir++", "fs"]).optional(),
};

const maildirStore = z.strictObject(maildirShape);

const store = z.discriminatedUnion("type", [imapStore, maildirStore], {
  error: (iss: RawIssue) => {
    const input = iss.input;
    if (input === undefined)
      return 'required table is missing (expected a table with type = "imap" or "maildir")';
    if (typeof input !== "object" || input === null || Array.isArray(input)) {
      return `expected a table, got ${describeValue(input)}`;
    }
    const type = (input as { type?: unknown }).type;
    return type === undefined
      ? 'required key is missing (expected "imap" or "maildir")'
      : `expected "imap" or "maildir", got ${describeValue(type)}`;
  },
});

const tableError = { error: expecting("a table") };

const account = z.strictObject({ ...accountOptionsShape, left: store, right: store }, tableError);

export const configSchema = z.strictObject(
  {
    defaults: z.strictObject(accountOptionsShape, tableError).optional(),
    accounts: z
      .record(
        z
          .string()
          .regex(ACCOUNT_NAME)
          .refine((name) => name !== "." && name !== ".."),
        account,
        tableError,
      )
      .optional(),
  },
  tableError,
);

export type RawConfig = z.infer<typeof configSchema>;
export type RawAccount = z.infer<typeof account>;
export type RawStore = z.infer<typeof store>;

/** Keys allowed in each kind of table, for unknown-key messages. */
export const KNOWN_KEYS = {
  top: ["defaults", "accounts"],
  defaults: Object.keys(accountOptionsShape),
  account: [...Object.keys(accountOptionsShape), "left", "right"],
  imap: Object.keys(imapShape),
  maildir: Object.keys(maildirShape),
  store: [...new Set([...Object.keys(imapShape), ...Object.keys(maildirShape)])],
} as const;

/** Keys whose values must never appear in a message. */
export const SECRET_KEYS: ReadonlySet<string> = new Set(["password"]);
