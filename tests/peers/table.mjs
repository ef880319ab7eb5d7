// Prints the markdown table of BENCHMARKS §12 from one run's figures.
//   node table.mjs ours.json peers.json
// Each figure is the median over the run's repetitions (PEERS_RUNS).
import fs from "node:fs";
import os from "node:os";

const ours = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const peers = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
const am = peers.automerge_repo;
const pd = peers.pouchdb;
const hasTls = !!am.tls;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
// The median of every numeric field over runs.
const med = (runs) => {
  const out = {};
  for (const k of Object.keys(runs[0])) out[k] = median(runs.map((r) => r[k]));
  return out;
};
const n = (x) => Math.round(x).toLocaleString("en-US");
const ms = (x) => `${x < 100 ? x.toFixed(1) : n(x)} ms`;
const ratio = (a, b) => `${(a / b).toFixed(2)}×`;
const mark = (a, b, goal) => `**${ratio(a, b)}**${a / b <= goal ? "" : " (behind)"}`;
const both = (r) => r.up_bytes + r.down_bytes;
// "TLS · plain" for a peer's figure.
const tp = (sys, f) => (hasTls ? `${f(sys.tls)} · ${f(sys.plain)}` : f(sys.plain));
const secure = (sys) => (hasTls ? sys.tls : sys.plain);

const lines = [];
const row = (cells) => lines.push(`| ${cells.join(" | ")} |`);
const w = med(ours.week.loopback);
const wWire = both(w);
const wFrames = w.frame_bytes_up + w.frame_bytes_down;
const amw = { plain: med(am.plain.week), tls: hasTls && med(am.tls.week) };
const pdw = { plain: med(pd.plain.week), tls: hasTls && med(pd.tls.week) };

row([
  "",
  "ours: wire (QUIC + TLS)",
  "ours: sync frames",
  hasTls ? "automerge-repo 2.x: TLS · plain" : "automerge-repo 2.x",
  hasTls ? "PouchDB 9 → express-pouchdb: TLS · plain" : "PouchDB 9 → express-pouchdb",
  "ours ÷ automerge-repo",
  "ours ÷ PouchDB",
  "goal",
]);
row(["---", "---:", "---:", "---:", "---:", "---:", "---:", "---"]);
row([
  "**week**, bytes up / down",
  `${n(w.up_bytes)} / ${n(w.down_bytes)}`,
  `${n(w.frame_bytes_up)} / ${n(w.frame_bytes_down)}`,
  tp(amw, (r) => `${n(r.up_bytes)} / ${n(r.down_bytes)}`),
  tp(pdw, (r) => `${n(r.up_bytes)} / ${n(r.down_bytes)}`),
  "",
  "",
  "",
]);
row([
  "**week**, bytes both ways",
  n(wWire),
  n(wFrames),
  tp(amw, (r) => n(both(r))),
  tp(pdw, (r) => n(both(r))),
  `wire ÷ ${hasTls ? "TLS" : "plain"} ${mark(wWire, both(secure(amw)), 1 / 3)}; frames ÷ plain ${ratio(wFrames, both(amw.plain))}`,
  `wire ÷ ${hasTls ? "TLS" : "plain"} ${mark(wWire, both(secure(pdw)), 1 / 5)}; frames ÷ plain ${ratio(wFrames, both(pdw.plain))}`,
  "≤ 0.33× / ≤ 0.20×",
]);
row([
  "week, messages up / down",
  `${n(w.up_datagrams)} / ${n(w.down_datagrams)} datagrams`,
  `${n(w.frames_up)} / ${n(w.frames_down)} frames`,
  `${n(amw.plain.up_messages)} / ${n(amw.plain.down_messages)} WebSocket messages (plain)`,
  `${n(pdw.plain.up_messages)} / ${n(pdw.plain.down_messages)} HTTP requests / responses (plain)`,
  `frames ${ratio(w.frames_up + w.frames_down, amw.plain.up_messages + amw.plain.down_messages)}`,
  `frames ${ratio(w.frames_up + w.frames_down, pdw.plain.up_messages + pdw.plain.down_messages)}`,
  "fewer",
]);
row([
  "week, round trips",
  "3 by design (1 QUIC + TLS handshake, 2 of the protocol)",
  "",
  tp(amw, (r) => n(r.round_trips)),
  tp(pdw, (r) => n(r.round_trips)),
  ratio(3, secure(amw).round_trips),
  ratio(3, secure(pdw).round_trips),
  "fewer",
]);
row([
  `week, wall on loopback (median of ${ours.week.loopback.length} / ${am.plain.week.length} / ${pd.plain.week.length})`,
  ms(w.wall_ms),
  "",
  tp(amw, (r) => ms(r.wall_ms)),
  tp(pdw, (r) => ms(r.wall_ms)),
  mark(w.wall_ms, secure(amw).wall_ms, 1),
  mark(w.wall_ms, secure(pdw).wall_ms, 1),
  "< 1×",
]);
if (ours.week.edge && am.edge && pd.edge) {
  const e = ours.week.edge;
  const wire = both(e);
  row([
    `week over EDGE (420 ms each way, 200 / 240 kbit/s, no loss): bytes both ways${hasTls ? " (peers over TLS)" : ""}`,
    n(wire),
    n(e.frame_bytes_up + e.frame_bytes_down),
    n(both(am.edge)),
    n(both(pd.edge)),
    mark(wire, both(am.edge), 1 / 3),
    mark(wire, both(pd.edge), 1 / 5),
    "≤ 0.33× / ≤ 0.20×",
  ]);
  row([
    "… round trips; wall",
    `3 by design; ${ms(e.wall_ms)}`,
    "",
    `${am.edge.round_trips}; ${ms(am.edge.wall_ms)}`,
    `${pd.edge.round_trips}; ${ms(pd.edge.wall_ms)}`,
    `wall ${mark(e.wall_ms, am.edge.wall_ms, 1)}`,
    `wall ${mark(e.wall_ms, pd.edge.wall_ms, 1)}`,
    "< 1×",
  ]);
}
for (const [i, runs] of ours.noop.entries()) {
  if (!am.plain.noop[i] || !pd.plain.noop[i]) continue; // sizes not run for the peers
  const a = { plain: med(am.plain.noop[i]), tls: hasTls && med(am.tls.noop[i]) };
  const p = { plain: med(pd.plain.noop[i]), tls: hasTls && med(pd.tls.noop[i]) };
  const o = med(runs);
  const oWire = both(o);
  row([
    `no-op reconnect, ${n(o.docs_on_device)} / ${n(a.plain.docs)} / ${n(p.plain.docs)} documents (median of ${runs.length} / ${am.plain.noop[i].length} / ${pd.plain.noop[i].length}): bytes both ways`,
    n(oWire),
    n(o.frame_bytes_up + o.frame_bytes_down),
    tp(a, (r) => n(both(r))),
    tp(p, (r) => n(both(r))),
    mark(oWire, both(secure(a)), 1),
    mark(oWire, both(secure(p)), 1),
    "< 1×",
  ]);
  row([
    "… round trips; wall",
    `2 by design; ${ms(o.wall_ms)}`,
    `${o.frames_up + o.frames_down} frames`,
    tp(a, (r) => `${r.round_trips}; ${ms(r.wall_ms)}`),
    tp(p, (r) => `${r.round_trips}; ${ms(r.wall_ms)}`),
    `wall ${mark(o.wall_ms, secure(a).wall_ms, 1)}`,
    `wall ${mark(o.wall_ms, secure(p).wall_ms, 1)}`,
    "< 1×",
  ]);
}
lines.push("");
lines.push(
  `Floor (the week's new automerge changes, zstd -19): ${n(ours.week.floor)} bytes in ${ours.week.docs_changed} documents. ` +
    `Servers' peak RSS after the week (plain): automerge-repo ${(amw.plain.server_peak_rss / 2 ** 20).toFixed(1)} MiB, ` +
    `express-pouchdb ${(pdw.plain.server_peak_rss / 2 ** 20).toFixed(1)} MiB.`,
);
if (ours.week.edge) {
  const e = ours.week.edge;
  lines.push(
    `Ours over the EDGE emulator of §6 without loss or jitter: ${n(e.up_bytes)} / ${n(e.down_bytes)} bytes up / down, ` +
      `${n(e.frames_up + e.frames_down)} frames, ${e.lost} lost.`,
  );
}
lines.push(
  `Run ${peers.started.slice(0, 16).replace("T", " ")} UTC on ${os.cpus().length} cores, load average ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(", ")} at the end; Node ${process.version}.`,
);
console.log(lines.join("\n"));
