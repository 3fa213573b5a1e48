/**
 * Splits a command line into argv the way a POSIX shell would for plain words, without running a
 * shell: whitespace separates words; '…' quotes literally; "…" quotes with `\"`, `\\`, `\$`, `` \` ``
 * escapes; a backslash outside quotes escapes the next character. No variables, globs or pipes.
 * Throws on an unterminated quote or a trailing backslash (the message never echoes the command).
 */
export function splitCommandLine(command: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let i = 0;
  while (i < command.length) {
    const c = command[i]!;
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
      i++;
    } else if (c === "'") {
      const end = command.indexOf("'", i + 1);
      if (end < 0) throw new Error("unterminated ' quote");
      word += command.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      inWord = true;
      i++;
      for (;;) {
        if (i >= command.length) throw new Error('unterminated " quote');
        const d = command[i]!;
        if (d === '"') {
          i++;
          break;
        }
        if (d === "\\" && i + 1 < command.length && '"\\$`'.includes(command[i + 1]!)) {
          word += command[i + 1];
          i += 2;
        } else {
          word += d;
          i++;
        }
      }
    } else if (c === "\\") {
      if (i + 1 >= command.length) throw new Error("trailing backslash");
      word += command[i + 1];
      inWord = true;
      i += 2;
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}
