import { cac } from "cac";
import { VERSION } from "../version.js";

export async function runCli(argv: string[]): Promise<number> {
  const cli = cac("tandem");
  cli.help();
  cli.version(VERSION);
  cli.parse(["node", "tandem", ...argv], { run: false });
  await cli.runMatchedCommand();
  return 0;
}
