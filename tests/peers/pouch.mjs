// PouchDB 9 as the phone, replicating to express-pouchdb with the options CHT uses on its
// phones: one document per record (a `data_record` that points at its child's `person`
// document), batches of 100, checkpoints on the phone only, and HTTP keep-alive. A sync is a
// push and a pull run together, as CHT's app does.
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import path from "node:path";
import PouchDB from "pouchdb";
import { startServer, quiescent, sleep } from "./servers.mjs";

function person(c, i) {
  return {
    _id: i === undefined ? c.id : `${c.id}-${i}`,
    type: "person",
    name: c.name,
    class: c.class ?? null,
    ...c.sections,
  };
}

export function dataRecord(child, r) {
  return {
    _id: r.id,
    type: "data_record",
    form: r.kind,
    reported_date: r.written_at, // milliseconds
    happened_on: r.happened_on,
    contact: { _id: r.author, role: r.author_role, device: r.device },
    fields: { patient_id: child, ...r.fields },
  };
}

function remote(server) {
  // A new agent per connection attempt: after a time offline its sockets are gone.
  const agent = new (server.tls ? https : http).Agent({ keepAlive: true });
  return new PouchDB(`${server.tls ? "https" : "http"}://${server.url}/medic`, {
    fetch: (u, opts) => PouchDB.fetch(u, { ...opts, agent }),
  });
}

// One sync: push with checkpoints on the phone (the source) and pull with checkpoints on
// the phone (there the target), both in batches of 100, together. `pullIds` limits the pull to
// those documents (CHT filters by the user's place on the server; `doc_ids` is the nearest
// PouchDB option).
export async function sync(local, server, pullIds = null) {
  const db = remote(server);
  const opts = { batch_size: 100, batches_limit: 10 };
  const [push, pull] = await Promise.all([
    local.replicate.to(db, { ...opts, checkpoint: "source" }),
    local.replicate.from(db, { ...opts, checkpoint: "target", ...(pullIds && { doc_ids: pullIds }) }),
  ]);
  return { pushed: push.docs_written, pulled: pull.docs_written };
}

export async function week(workload, work, tls = null, run = 0, link = null) {
  const tag = `${tls ? "tls" : "plain"}-${run}`;
  const server = await startServer("pouch-server.mjs", path.join(work, `pouch-server-${tag}`), { http: true, link }, tls);
  const local = new PouchDB(path.join(work, `pouch-phone-${tag}`));
  const docs = [];
  for (const c of workload.children) {
    docs.push(person(c));
    for (const r of c.records) docs.push(dataRecord(c.id, r));
  }
  await local.bulkDocs(docs);
  await sync(local, server);
  await sleep(200);

  // Offline: the week, one document written per record, one per profile edit.
  for (const { child, record } of workload.week.records) await local.put(dataRecord(child, record));
  for (const e of workload.week.edits) {
    const p = await local.get(e.child);
    p[e.section] = { ...(p[e.section] || {}), ...e.fields };
    await local.put(p);
  }

  server.proxy.shape(true); // the link, if any, from here on
  const base = server.proxy.snapshot();
  const t0 = performance.now();
  const result = await sync(local, server);
  const done = performance.now() - t0;
  const counts = await quiescent(server.proxy, base, t0);
  const rss = await server.peakRss();
  await local.close();
  await server.stop();
  return { ...counts, wall_ms: done, pushed: result.pushed, server_peak_rss: rss };
}

export async function noop(workload, work, n, tls = null, runs = 1) {
  const tag = `${tls ? "tls" : "plain"}-${n}`;
  const server = await startServer("pouch-server.mjs", path.join(work, `pouch-server-${tag}`), { http: true }, tls);
  const local = new PouchDB(path.join(work, `pouch-phone-${tag}`));
  const docs = [];
  for (let i = 0; i < n; i++) docs.push(person(workload.children[i % workload.children.length], i));
  await local.bulkDocs(docs);
  await sync(local, server);
  // `runs` syncs with nothing new, each on a new connection, each measured on its own.
  const results = [];
  for (let r = 0; r < runs; r++) {
    await sleep(200);
    const base = server.proxy.snapshot();
    const t0 = performance.now();
    await sync(local, server);
    const done = performance.now() - t0;
    const counts = await quiescent(server.proxy, base, t0);
    results.push({ ...counts, wall_ms: done, docs: n });
  }
  await local.close();
  await server.stop();
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const workload = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const work = fs.mkdtempSync("/tmp/peers-pouch-");
  console.log(await week(workload, work));
  console.log(await noop(workload, work, 10, null, 2));
  fs.rmSync(work, { recursive: true, force: true });
  process.exit(0);
}
