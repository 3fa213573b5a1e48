/**
 * Folder selection and naming between the sides. Patterns are IMAP LIST style on `/`-separated
 * names: `*` matches anything, `%` anything but `/`. INBOX matches case-insensitively.
 */
export function folderMatcher(
  include: readonly string[],
  exclude: readonly string[],
): (name: string) => boolean {
  const inc = include.map(patternToRegExp);
  const exc = exclude.map(patternToRegExp);
  return (name) => inc.some((r) => r.test(name)) && !exc.some((r) => r.test(name));
}

function patternToRegExp(pattern: string): RegExp {
  let src = "";
  for (const ch of pattern) {
    if (ch === "*") src += "[\\s\\S]*";
    else if (ch === "%") src += "[^/]*";
    else src += ch.replace(/[\\^$.|?+()[\]{}]/g, "\\$&");
  }
  const inbox = /^INBOX(?=\/|$)/i.test(pattern);
  // "u": a pattern and a name are matched by code point; [\s\S] lets * cross line breaks too.
  return new RegExp(`^${src}$`, inbox ? "iu" : "u");
}

/** Maps left names to right names and back with the account's one-to-one rename map. */
export class FolderNames {
  private readonly toRight = new Map<string, string>();
  private readonly toLeft = new Map<string, string>();

  constructor(rename: Record<string, string>) {
    for (const [l, r] of Object.entries(rename)) {
      this.toRight.set(l, r);
      this.toLeft.set(r, l);
    }
  }

  right(left: string): string {
    return this.toRight.get(left) ?? left;
  }

  left(right: string): string {
    return this.toLeft.get(right) ?? right;
  }
}

/** INBOX in any case is INBOX. */
export function canonicalFolder(name: string): string {
  return /^inbox$/i.test(name) ? "INBOX" : name.replace(/^inbox\//i, "INBOX/");
}
