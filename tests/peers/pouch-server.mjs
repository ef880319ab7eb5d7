// express-pouchdb over PouchDB (LevelDB on disk): CouchDB's replication protocol, served on
// 127.0.0.1 (CouchDB itself is not in Debian here).
//   node pouch-server.mjs DATA_DIR  → prints "port <n>" when listening
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import PouchDB from "pouchdb";
import expressPouchDB from "express-pouchdb";

const dir = process.argv[2];
// With PEERS_TLS_CERT and PEERS_TLS_KEY, the server speaks TLS (wss://, https://).
const tls = () =>
  process.env.PEERS_TLS_CERT && {
    cert: fs.readFileSync(process.env.PEERS_TLS_CERT),
    key: fs.readFileSync(process.env.PEERS_TLS_KEY),
  };
fs.mkdirSync(dir, { recursive: true });
const Pouch = PouchDB.defaults({ prefix: `${dir}/` });
const app = expressPouchDB(Pouch, { mode: "minimumForPouchDB", logPath: `${dir}/log.txt` });
const server = tls() ? https.createServer(tls(), app) : http.createServer(app);
server.keepAliveTimeout = 65_000;
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`port ${server.address().port}\n`);
});
process.on("message", (m) => {
  if (m === "rss") process.send({ rss: process.resourceUsage().maxRSS * 1024 });
});
process.on("SIGTERM", () => process.exit(0));
