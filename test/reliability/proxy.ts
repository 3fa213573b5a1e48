// A TCP proxy in front of Dovecot that holds back the first client command matching a pattern and
// calls back, so that a test can kill tandem at exactly that point of an IMAP exchange.
import { connect, createServer, type Server, type Socket } from "node:net";

export interface HoldingProxy {
  port: number;
  /** Resolves when a command matching the pattern was held back. */
  held: Promise<string>;
  close(): Promise<void>;
}

export function holdingProxy(host: string, port: number, pattern: RegExp): Promise<HoldingProxy> {
  const sockets = new Set<Socket>();
  let onHeld: (line: string) => void = () => {};
  const held = new Promise<string>((r) => (onHeld = r));
  let holding = false;
  const server: Server = createServer((client) => {
    const upstream = connect(port, host);
    sockets.add(client).add(upstream);
    client.on("data", (chunk: Buffer) => {
      if (holding) return;
      const text = chunk.toString("latin1");
      if (pattern.test(text)) {
        holding = true;
        onHeld(text.trim());
        return;
      }
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      if (!holding) client.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      resolve({
        port: (server.address() as { port: number }).port,
        held,
        close: () =>
          new Promise((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
