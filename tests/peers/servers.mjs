// Starts a server script of this folder in its own process and its counting proxy.
import { fork } from "node:child_process";
import { startProxy } from "./proxy.mjs";

// With `tls` ({ cert, key }: PEM file paths), the server speaks TLS and the proxy counts TLS
// records (it cannot read messages then). Clients trust the certificate through
// NODE_EXTRA_CA_CERTS, set by run.sh.
export async function startServer(script, dataDir, proxyOptions, tls = null) {
  const env = { ...process.env };
  if (tls) Object.assign(env, { PEERS_TLS_CERT: tls.cert, PEERS_TLS_KEY: tls.key });
  const child = fork(new URL(script, import.meta.url), [dataDir], {
    stdio: ["ignore", "pipe", "inherit", "ipc"],
    env,
  });
  const port = await new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (b) => {
      out += b;
      const m = out.match(/port (\d+)/);
      if (m) resolve(Number(m[1]));
    });
    child.on("exit", (code) => reject(new Error(`${script} exited with ${code}`)));
  });
  const proxy = await startProxy(port, tls ? { link: proxyOptions.link } : proxyOptions);
  return {
    port,
    proxy,
    tls: !!tls,
    url: `127.0.0.1:${proxy.port}`,
    // The server process's peak resident set (its maxRSS).
    peakRss: () =>
      new Promise((resolve) => {
        child.once("message", (m) => resolve(m.rss));
        child.send("rss");
      }),
    async stop() {
      await proxy.close();
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Waits until the proxy has seen no byte for `quietMs`; returns the time of the last byte
// seen, measured from `since` (performance.now()), and the counters since `base`.
export async function quiescent(proxy, base, since, quietMs = 300) {
  let last = proxy.snapshot();
  let lastChange = performance.now();
  for (;;) {
    await sleep(10);
    const now = proxy.snapshot();
    if (now.up_bytes !== last.up_bytes || now.down_bytes !== last.down_bytes) {
      last = now;
      lastChange = performance.now();
    } else if (performance.now() - lastChange >= quietMs) {
      return { last_byte_ms: proxy.lastAt() - since, ...proxy.since(base) };
    }
  }
}
