// The reconnect storm of BENCHMARKS §7 for the two peers: a school of 240 children on the
// server, 200 phones that each follow 3 or 4 of them (720 pairings, as §7's 郭庄小学), each
// phone writes 20 records offline, then all 200 reconnect at the same moment. The same work is
// also run one phone after another on a fresh server. Reported: the wall time from the release
// to the last phone done, records/s, and the server process's peak RSS.
//   node storm.mjs WORKLOAD.json > storm.json      (STORM_DEVICES, STORM_RECORDS: a smaller run)
//   node storm.mjs --table storm.json              (the figures as a Markdown table)
// Plain HTTP/WebSocket on 127.0.0.1, no link emulation: what the servers do, not the wire.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import PouchDB from "pouchdb";
import { Repo } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs";
import { startServer, sleep } from "./servers.mjs";
import { synced } from "./automerge.mjs";
import { dataRecord, sync as pouchSync } from "./pouch.mjs";

const CHILDREN = 240;
const devices = Number(process.env.STORM_DEVICES || 200);
const perDevice = Number(process.env.STORM_RECORDS || 20);
const log = (...a) => console.error(new Date().toISOString(), ...a);

// Phone i follows 4 children if i < 120, else 3: 720 pairings for 200 phones.
function followed(i) {
  const n = i < devices * 0.6 ? 4 : 3;
  return Array.from({ length: n }, (_, j) => (i * 7 + j * 61) % CHILDREN);
}

// The records phone i writes offline: the week's records of the workload, cycled, with new ids.
function recordsOf(workload, i) {
  const week = workload.week.records;
  const kids = followed(i);
  return Array.from({ length: perDevice }, (_, k) => {
    const { record } = week[(i * perDevice + k) % week.length];
    return { child: kids[k % kids.length], record: { ...record, id: `${record.id}-${i}-${k}` } };
  });
}

const childDoc = (c, n) => ({ id: `child-${n}`, name: c.name, sections: c.sections, records: {} });

// Runs `phones` (async functions) all at once or one after another; returns the wall time.
async function release(phones, together) {
  const t0 = performance.now();
  if (together) await Promise.all(phones.map((p) => p()));
  else for (const p of phones) await p();
  return performance.now() - t0;
}

// ---- automerge-repo ----

// 200 phones polling: every 20 ms, not every 2.
const amSynced = (repo, handles) => synced(repo, handles, 600_000, 20);

const wsUrl = (server) => `ws://${server.url}`;

async function automergeStorm(workload, work, together) {
  const tag = together ? "storm" : "serial";
  const server = await startServer("am-server.mjs", path.join(work, `am-${tag}`), { ws: true });
  // The school's documents, sent by one client.
  const school = new Repo({ network: [], storage: new NodeFSStorageAdapter(path.join(work, `am-school-${tag}`)), peerId: "school" });
  const docs = Array.from({ length: CHILDREN }, (_, n) =>
    school.create(childDoc(workload.children[n % workload.children.length], n)),
  );
  let adapter = new WebSocketClientAdapter(wsUrl(server));
  school.networkSubsystem.addNetworkAdapter(adapter);
  await amSynced(school, docs);
  school.networkSubsystem.removeNetworkAdapter(adapter);
  await school.shutdown();
  log(`automerge-repo (${tag}): the school's ${CHILDREN} documents are on the server`);

  // Each phone fetches its children's documents, then goes offline and writes.
  const phones = [];
  for (let i = 0; i < devices; i++) {
    const repo = new Repo({ network: [], storage: new NodeFSStorageAdapter(path.join(work, `am-${tag}-${i}`)), peerId: `phone-${i}` });
    const a = new WebSocketClientAdapter(wsUrl(server));
    repo.networkSubsystem.addNetworkAdapter(a);
    const handles = await Promise.all(followed(i).map((n) => repo.find(docs[n].url)));
    await amSynced(repo, handles);
    repo.networkSubsystem.removeNetworkAdapter(a);
    phones.push({ repo, handles });
  }
  log(`automerge-repo (${tag}): ${devices} phones hold their children`);
  for (let i = 0; i < devices; i++) {
    const { repo, handles } = phones[i];
    const byChild = new Map(followed(i).map((n, j) => [n, handles[j]]));
    for (const { child, record } of recordsOf(workload, i)) {
      byChild.get(child).change((d) => (d.records[record.id] = record));
    }
    await repo.flush();
  }
  await sleep(500);
  const before = await server.peakRss();
  const wall = await release(
    phones.map(({ repo, handles }) => async () => {
      const a = new WebSocketClientAdapter(wsUrl(server));
      repo.networkSubsystem.addNetworkAdapter(a);
      await amSynced(repo, handles);
      repo.networkSubsystem.removeNetworkAdapter(a);
    }),
    together,
  );
  const peak = await server.peakRss();
  // Every record reached the server: read the documents back from a fresh client.
  const check = new Repo({ network: [new WebSocketClientAdapter(wsUrl(server))], peerId: "check" });
  let records = 0;
  for (const d of docs) records += Object.keys((await check.find(d.url)).doc().records).length;
  await check.shutdown();
  for (const { repo } of phones) await repo.shutdown();
  await server.stop();
  return { wall_ms: wall, records_per_s: (devices * perDevice) / (wall / 1000), server_peak_rss_before: before, server_peak_rss: peak, records_on_server: records };
}

// ---- PouchDB ----

const childIds = (i) => followed(i).map((n) => `child-${n}`);

function person(c, n) {
  return { _id: `child-${n}`, type: "person", name: c.name, ...c.sections };
}

async function pouchStorm(workload, work, together) {
  const tag = together ? "storm" : "serial";
  const server = await startServer("pouch-server.mjs", path.join(work, `pouch-${tag}`), { http: true });
  const school = new PouchDB(path.join(work, `pouch-school-${tag}`));
  await school.bulkDocs(Array.from({ length: CHILDREN }, (_, n) => person(workload.children[n % workload.children.length], n)));
  await pouchSync(school, server, []);
  await school.close();
  log(`PouchDB (${tag}): the school's ${CHILDREN} persons are on the server`);
  const phones = [];
  for (let i = 0; i < devices; i++) {
    const local = new PouchDB(path.join(work, `pouch-${tag}-${i}`));
    await pouchSync(local, server, childIds(i));
    phones.push(local);
  }
  log(`PouchDB (${tag}): ${devices} phones hold their children`);
  for (let i = 0; i < devices; i++) {
    await phones[i].bulkDocs(recordsOf(workload, i).map(({ child, record }) => dataRecord(`child-${child}`, record)));
  }
  await sleep(500);
  const before = await server.peakRss();
  const wall = await release(
    phones.map((local, i) => () => pouchSync(local, server, childIds(i))),
    together,
  );
  const peak = await server.peakRss();
  const info = await (await fetch(`http://${server.url}/medic`)).json();
  for (const p of phones) await p.close();
  await server.stop();
  return {
    wall_ms: wall,
    records_per_s: (devices * perDevice) / (wall / 1000),
    server_peak_rss_before: before,
    server_peak_rss: peak,
    records_on_server: info.doc_count - CHILDREN,
  };
}

function table(r) {
  const mib = (b) => (b / 1048576).toFixed(1);
  const row = (name, x) =>
    `| ${name} | ${(x.storm.wall_ms / 1000).toFixed(2)} s | ${x.storm.records_per_s.toFixed(0)} | ` +
    `${(x.one_at_a_time.wall_ms / 1000).toFixed(2)} s | ${x.one_at_a_time.records_per_s.toFixed(0)} | ` +
    `${(x.storm.records_per_s / x.one_at_a_time.records_per_s).toFixed(2)}× | ` +
    `${mib(x.storm.server_peak_rss)} MiB | ${x.storm.records_on_server} / ${x.one_at_a_time.records_on_server} |`;
  return [
    `${r.devices} phones × ${r.records_per_device} records, ${r.children} children on the server (${r.started})`,
    "",
    "| | storm: wall | records/s | one at a time: wall | records/s | storm ÷ one at a time | server peak RSS (storm) | records on the server |",
    "|---|---|---|---|---|---|---|---|",
    row("automerge-repo 2.x", r.automerge_repo),
    row("PouchDB 9 → express-pouchdb", r.pouchdb),
  ].join("\n");
}

if (process.argv[2] === "--table") {
  console.log(table(JSON.parse(fs.readFileSync(process.argv[3], "utf8"))));
  process.exit(0);
}

const workload = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const work = fs.mkdtempSync(path.join(os.tmpdir(), "shouwang-peers-storm-"));
const out = { started: new Date().toISOString(), devices, records_per_device: perDevice, children: CHILDREN };
try {
  for (const [name, storm] of [["automerge_repo", automergeStorm], ["pouchdb", pouchStorm]]) {
    out[name] = {};
    for (const together of [true, false]) {
      log(`${name}: ${together ? "the storm" : "one phone at a time"}`);
      out[name][together ? "storm" : "one_at_a_time"] = await storm(workload, work, together);
    }
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
console.log(JSON.stringify(out, null, 2));
process.exit(0);
