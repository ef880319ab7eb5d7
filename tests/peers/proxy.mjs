// A counting TCP proxy on 127.0.0.1, put in front of each server.
//
// It counts bytes each way, TCP connections, and round trips: a round trip is counted each
// time data flows from the server to the client after having flowed from the client to the
// server (a request and its answer, however many segments each takes). With `ws: true` it
// also parses WebSocket frames after the HTTP upgrade and counts messages each way; with
// `http: true` it counts HTTP requests (request lines) and responses (status lines).
//
// With `link` ({ delayMs, upBps, downBps }) it also emulates a slow link, like the EDGE
// settings of tests/src/link.rs but for TCP and without loss: each direction delays every
// chunk by delayMs and serialises it at its rate (with 40 bytes of TCP/IP header per 1,460
// bytes of payload), and a connection's first data up waits one round trip (the TCP
// handshake the proxy, which accepts at once, would otherwise hide). The link applies to
// connections opened after `shape(true)`, so that the set-up before a measurement runs fast.
import net from "node:net";

const TCP_OVERHEAD = (bytes) => Math.ceil(bytes / 1460) * 40;

// Delivers chunks in order after the link's delay and its serialisation at `bps`.
function shaper(link, bps, readyAt) {
  let free = readyAt;
  return (buf, write) => {
    if (!link) return write(buf);
    const now = performance.now();
    const start = Math.max(now, free);
    free = start + ((buf.length + TCP_OVERHEAD(buf.length)) * 8 * 1000) / bps;
    setTimeout(() => write(buf), free + link.delayMs - now);
  };
}

export async function startProxy(targetPort, { ws = false, http = false, link = null } = {}) {
  const stats = {
    connections: 0,
    up_bytes: 0,
    down_bytes: 0,
    round_trips: 0,
    up_messages: 0,
    down_messages: 0,
  };
  const sockets = new Set();
  let lastAt = 0; // performance.now() of the last byte either way
  let shaping = false;
  const server = net.createServer((client) => {
    stats.connections += 1;
    const upstream = net.connect(targetPort, "127.0.0.1");
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    sockets.add(client);
    sockets.add(upstream);
    let last = null; // "up" or "down": the direction of the last data on this connection
    const opened = performance.now();
    const l = shaping ? link : null;
    const up = shaper(l, l?.upBps, opened + 2 * (l?.delayMs ?? 0));
    const down = shaper(l, l?.downBps, opened);
    const parsers = { up: frameCounter(ws, http, "up"), down: frameCounter(ws, http, "down") };
    client.on("data", (buf) => {
      stats.up_bytes += buf.length;
      lastAt = performance.now();
      last = "up";
      stats.up_messages += parsers.up(buf);
      up(buf, (b) => upstream.writable && upstream.write(b));
    });
    upstream.on("data", (buf) => {
      stats.down_bytes += buf.length;
      lastAt = performance.now();
      if (last === "up") stats.round_trips += 1;
      last = "down";
      stats.down_messages += parsers.down(buf);
      down(buf, (b) => client.writable && client.write(b));
    });
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("close", close);
    upstream.on("close", close);
    client.on("error", close);
    upstream.on("error", close);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: server.address().port,
    snapshot: () => ({ ...stats }),
    lastAt: () => lastAt,
    shape: (on) => (shaping = on),
    since(earlier) {
      const out = {};
      for (const k of Object.keys(stats)) out[k] = stats[k] - earlier[k];
      return out;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

// Returns a function that takes the next chunk of one direction and says how many messages
// (WebSocket data frames, or HTTP messages) ended in it.
function frameCounter(ws, http, dir) {
  if (http) {
    // Request lines go up, status lines come down. A body may end without a newline, so a
    // message can start right after it; the JSON bodies hold neither pattern.
    const re =
      dir === "up"
        ? /(GET|PUT|POST|DELETE|HEAD) \/\S* HTTP\/1\.1\r\n/g
        : /HTTP\/1\.1 \d{3} [A-Za-z]/g;
    let tail = "";
    return (buf) => {
      const text = tail + buf.toString("latin1");
      const n = (text.match(re) || []).length - (tail.match(re) || []).length;
      tail = text.slice(-64);
      return n;
    };
  }
  if (!ws) return () => 0;
  let handshake = true;
  let head = Buffer.alloc(0);
  let pending = Buffer.alloc(0); // bytes of an incomplete frame header
  let remaining = 0; // payload bytes of the current frame still to come
  return (buf) => {
    let data = buf;
    if (handshake) {
      head = Buffer.concat([head, data]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return 0;
      handshake = false;
      data = head.subarray(end + 4);
    }
    let count = 0;
    while (data.length > 0) {
      if (remaining > 0) {
        const take = Math.min(remaining, data.length);
        remaining -= take;
        data = data.subarray(take);
        continue;
      }
      pending = Buffer.concat([pending, data]);
      data = Buffer.alloc(0);
      if (pending.length < 2) break;
      const masked = (pending[1] & 0x80) !== 0;
      let len = pending[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (pending.length < 4) break;
        len = pending.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (pending.length < 10) break;
        len = Number(pending.readBigUInt64BE(2));
        off = 10;
      }
      if (masked) off += 4;
      if (pending.length < off) break;
      const opcode = pending[0] & 0x0f;
      const fin = (pending[0] & 0x80) !== 0;
      if (fin && opcode !== 0x9 && opcode !== 0xa) count += 1; // data frames, not pings
      data = pending.subarray(off);
      pending = Buffer.alloc(0);
      remaining = len;
    }
    return count;
  };
}
