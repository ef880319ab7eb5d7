// Runs automerge-repo and PouchDB on the exported workload and prints their figures as JSON.
//   node run.mjs WORKLOAD.json [NOOP_SIZES, default 10,100,1000] > peers.json
// PEERS_RUNS (3) runs of the week and of each no-op reconnect per system and mode. With PEERS_CERT and PEERS_KEY (a
// self-signed certificate for 127.0.0.1, trusted through NODE_EXTRA_CA_CERTS), every
// measurement is also made over TLS (wss://, https://), as a deployment would run them.
// Then the week once through an EDGE-like link (PEERS_EDGE=0 skips it).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as automerge from "./automerge.mjs";
import * as pouch from "./pouch.mjs";

const workload = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const sizes = (process.argv[3] || "10,100,1000").split(",").map(Number);
const runs = Number(process.env.PEERS_RUNS || 3);
const tls = process.env.PEERS_CERT ? { cert: process.env.PEERS_CERT, key: process.env.PEERS_KEY } : null;
// tests/src/link.rs's EDGE settings, less loss and jitter (a TCP proxy cannot lose segments).
const EDGE = { delayMs: 420, upBps: 200_000, downBps: 240_000 };
const work = fs.mkdtempSync(path.join(os.tmpdir(), "shouwang-peers-"));
const out = { started: new Date().toISOString(), runs };
try {
  for (const [name, system] of [["automerge_repo", automerge], ["pouchdb", pouch]]) {
    out[name] = {};
    for (const [mode, t] of tls ? [["plain", null], ["tls", tls]] : [["plain", null]]) {
      const week = [];
      for (let r = 0; r < runs; r++) {
        console.error(`${name} (${mode}): the week, run ${r + 1} of ${runs}`);
        week.push(await system.week(workload, work, t, r));
      }
      const noop = [];
      for (const n of sizes) {
        console.error(`${name} (${mode}): no-op reconnect, ${n} documents`);
        noop.push(await system.noop(workload, work, n, t, runs));
      }
      out[name][mode] = { week, noop };
    }
    if (process.env.PEERS_EDGE !== "0") {
      // The week once more through the EDGE-like link (TLS when available, as ours).
      console.error(`${name}: the week over the EDGE-like link`);
      out[name].edge = await system.week(workload, work, tls, "edge", EDGE);
    }
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
console.log(JSON.stringify(out, null, 2));
process.exit(0);
