// automerge-repo 2.x as the phone: one automerge document per child file (its sections and a
// map of its records), written as our teacher writes them: one change per record. The phone
// syncs the year with the server, goes offline, writes the week, and reconnects by giving
// the repo a new WebSocket adapter (not `networkSubsystem.reconnect()`, which drops the storage
// id so that the server keeps no sync state for the phone).
import fs from "node:fs";
import path from "node:path";
import { Repo } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs";
import { startServer, quiescent, sleep } from "./servers.mjs";

function connect(repo, server) {
  const adapter = new WebSocketClientAdapter(`${server.tls ? "wss" : "ws"}://${server.url}`);
  repo.networkSubsystem.addNetworkAdapter(adapter);
  return adapter;
}

function disconnect(repo, adapter) {
  repo.networkSubsystem.removeNetworkAdapter(adapter); // closes its socket
}

const same = (a, b) => a && b && a.length === b.length && a.every((h, i) => h === b[i]);

// Resolves when the server (known by its storage id) has told the phone it holds the heads of
// every handle, looking every `pollMs`.
export async function synced(repo, handles, timeoutMs = 600_000, pollMs = 2) {
  const began = performance.now();
  for (;;) {
    const server = repo.peers.find((p) => p === "storage-server");
    const sid = server && repo.getStorageIdOfPeer(server);
    if (sid && handles.every((h) => same(h.getSyncInfo(sid)?.lastHeads, h.heads()))) return;
    if (performance.now() - began > timeoutMs) throw new Error("automerge-repo: sync timed out");
    await sleep(pollMs);
  }
}

function childDoc(c) {
  return { id: c.id, name: c.name, class: c.class ?? null, sections: c.sections, records: {} };
}

const log = (...a) => process.env.PEERS_DEBUG && console.error(new Date().toISOString(), ...a);

async function phone(dir) {
  return new Repo({
    network: [],
    storage: new NodeFSStorageAdapter(dir),
    peerId: "teacher-phone",
  });
}

export async function week(workload, work, tls = null, run = 0, link = null) {
  const tag = `${tls ? "tls" : "plain"}-${run}`;
  const server = await startServer("am-server.mjs", path.join(work, `am-server-${tag}`), { ws: true, link }, tls);
  const repo = await phone(path.join(work, `am-phone-${tag}`));
  const handles = new Map();
  for (const c of workload.children) {
    const h = repo.create(childDoc(c));
    for (const r of c.records) h.change((d) => (d.records[r.id] = r));
    handles.set(c.id, h);
  }
  log("year written");
  let adapter = connect(repo, server);
  await synced(repo, [...handles.values()]);
  log("year synced");
  await quiescent(server.proxy, server.proxy.snapshot(), 0);
  disconnect(repo, adapter);
  await sleep(200);

  // Offline: the week.
  for (const { child, record } of workload.week.records) {
    handles.get(child).change((d) => (d.records[record.id] = record));
  }
  for (const e of workload.week.edits) {
    handles.get(e.child).change((d) => {
      if (!d.sections[e.section]) d.sections[e.section] = {};
      for (const [k, v] of Object.entries(e.fields)) d.sections[e.section][k] = v;
    });
  }
  await repo.flush();
  log("week written");

  server.proxy.shape(true); // the link, if any, from here on
  const base = server.proxy.snapshot();
  const t0 = performance.now();
  adapter = connect(repo, server);
  await synced(repo, [...handles.values()]);
  const done = performance.now() - t0;
  const counts = await quiescent(server.proxy, base, t0);
  disconnect(repo, adapter);
  await repo.shutdown();
  const rss = await server.peakRss();
  await server.stop();
  return { ...counts, wall_ms: done, server_peak_rss: rss };
}

export async function noop(workload, work, n, tls = null, runs = 1) {
  const tag = `${tls ? "tls" : "plain"}-${n}`;
  const server = await startServer("am-server.mjs", path.join(work, `am-server-${tag}`), { ws: true }, tls);
  const repo = await phone(path.join(work, `am-phone-${tag}`));
  const handles = [];
  for (let i = 0; i < n; i++) {
    const c = workload.children[i % workload.children.length];
    handles.push(repo.create({ ...childDoc(c), id: `${c.id}-${i}` }));
  }
  let adapter = connect(repo, server);
  await synced(repo, handles);
  await quiescent(server.proxy, server.proxy.snapshot(), 0);
  // `runs` reconnects, each measured on its own.
  const results = [];
  for (let r = 0; r < runs; r++) {
    disconnect(repo, adapter);
    await repo.flush();
    await sleep(200);
    const base = server.proxy.snapshot();
    const t0 = performance.now();
    adapter = connect(repo, server);
    const counts = await quiescent(server.proxy, base, t0);
    results.push({ ...counts, wall_ms: counts.last_byte_ms, docs: n });
  }
  disconnect(repo, adapter);
  await repo.shutdown();
  await server.stop();
  return results;
}

// For a quick look: node automerge.mjs workload.json
if (import.meta.url === `file://${process.argv[1]}`) {
  const workload = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const work = fs.mkdtempSync("/tmp/peers-am-");
  console.log(await week(workload, work));
  console.log(await noop(workload, work, 10, null, 2));
  fs.rmSync(work, { recursive: true, force: true });
  process.exit(0);
}
