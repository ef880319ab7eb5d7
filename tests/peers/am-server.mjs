// An automerge-repo 2.x sync server: the few lines of automerge-repo-sync-server (which pins
// automerge-repo 1.x), on 2.x. A WebSocket server on 127.0.0.1, a repo that stores every
// document it is sent on disk and shares nothing on its own (share policy false, as in the
// sync server), keeping sync state per client storage id.
//   node am-server.mjs DATA_DIR  → prints "port <n>" when listening
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import { Repo } from "@automerge/automerge-repo";
import { WebSocketServerAdapter } from "@automerge/automerge-repo-network-websocket";
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs";
import { WebSocketServer } from "ws";

const dir = process.argv[2];
// With PEERS_TLS_CERT and PEERS_TLS_KEY, the server speaks TLS (wss://, https://).
const tls = () =>
  process.env.PEERS_TLS_CERT && {
    cert: fs.readFileSync(process.env.PEERS_TLS_CERT),
    key: fs.readFileSync(process.env.PEERS_TLS_KEY),
  };
const handler = (_req, res) => res.end("automerge-repo sync server");
const server = tls() ? https.createServer(tls(), handler) : http.createServer(handler);
const wss = new WebSocketServer({ noServer: true });
server.on("upgrade", (req, socket, head) => {
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req));
});
const repo = new Repo({
  network: [new WebSocketServerAdapter(wss)],
  storage: new NodeFSStorageAdapter(dir),
  peerId: "storage-server",
  sharePolicy: async () => false,
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`port ${server.address().port}\n`);
});
process.on("message", (m) => {
  if (m === "rss") process.send({ rss: process.resourceUsage().maxRSS * 1024 });
});
process.on("SIGTERM", async () => {
  await repo.shutdown();
  process.exit(0);
});
