// Recovery on reconnect against a real push_demo with history, on Local and on Redis: a
// numbered stream flows to a group (and to a flag) while the reader's connection is cut over
// and over; the reader must see every number once, in order — no gap, no duplicate at any seam.

import assert from "node:assert/strict";
import { test } from "node:test";

import { connect } from "../corepush.js";
import {
  next, redisInstalled, redisRequired, startDemo, startRedis, until,
} from "./helpers.mjs";

const TOTAL = 3000;
const CUTS = 25;
const HISTORY = 100000;
const FAST = { initial: 5, max: 40, factor: 2, jitter: 0.5 };

/** Pushes 1..TOTAL to the target as fast as replies come, a few in flight at once. */
async function pushStream(pusher, kind, name) {
  const window = 8;
  let n = 0;
  const worker = async () => {
    while (n < TOTAL) {
      n += 1;
      const data = { n };
      if (kind === "group") await pusher.sendToGroup(name, data);
      else await pusher.sendByFlag(name, data);
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
}

/** One run: `readerUrl` is where the reader (re)connects, `pusherUrl` where the stream and
 * the cuts come from. */
async function runStream({ kind, readerUrl, pusherUrl }) {
  const name = `stream-${kind}`;
  const reader = await connect(readerUrl, { backoff: FAST });
  const pusher = await connect(pusherUrl);
  const cutter = await connect(pusherUrl);
  const seen = [];
  const recoveries = [];
  reader.on("push", ({ data }) => {
    if (data && typeof data.n === "number") seen.push(data.n);
  });
  reader.on("recovered", (detail) => recoveries.push(detail));
  try {
    if (kind === "group") {
      await reader.bind("reader");
      await reader.join(name, { position: true });
    } else {
      await reader.bind(name, { position: true });
    }
    const flowing = pushStream(pusher, kind, name);
    for (let cut = 0; cut < CUTS; cut += 1) {
      // Cut only after some of the stream has arrived on this connection.
      const mark = seen.length + 20;
      await until(reader, "push", () => seen.length >= mark || seen.at(-1) === TOTAL);
      if (seen.at(-1) === TOTAL) break;
      const back = next(reader, "resubscribed");
      const closed = kind === "group"
        ? await cutter.closeByFlag("reader", { wait: true })
        : await cutter.closeByFlag(name, { wait: true });
      assert.equal(closed, 1);
      await back;
    }
    await flowing;
    await until(reader, "push", () => seen.at(-1) === TOTAL);
    // Every number from the first seen on, once, in order.
    const first = seen[0];
    const gaps = seen.filter((n, i) => i > 0 && n !== seen[i - 1] + 1);
    assert.deepEqual(gaps, [], `the stream broke after ${seen.length} pushes`);
    assert.equal(seen.length, TOTAL - first + 1);
    assert.ok(recoveries.length >= 10, `only ${recoveries.length} recoveries`);
    assert.ok(recoveries.every((r) => r.recovered), JSON.stringify(recoveries.find((r) => !r.recovered)));
    return recoveries;
  } finally {
    reader.close();
    pusher.close();
    cutter.close();
  }
}

const LOCAL = ["--history", String(HISTORY)];

test("Local: a group's numbered stream survives repeated cuts exactly", async () => {
  const demo = await startDemo(LOCAL);
  try {
    await runStream({ kind: "group", readerUrl: demo.url, pusherUrl: demo.url });
  } finally {
    await demo.stop();
  }
});

test("Local: a flag's numbered stream survives repeated cuts exactly", async () => {
  const demo = await startDemo(LOCAL);
  try {
    await runStream({ kind: "flag", readerUrl: demo.url, pusherUrl: demo.url });
  } finally {
    await demo.stop();
  }
});

test("Local: a restart loses the history; the client is told (recovered false) and takes a fresh position", async () => {
  const demo = await startDemo(LOCAL);
  const client = await connect(demo.url, { backoff: FAST });
  await client.join("room", { position: true });
  const before = client.position({ group: "room" });
  assert.ok(before && before.epoch !== undefined, "join answered a position");
  const closed = next(client, "close");
  await demo.stop();
  await closed;
  const restarted = await startDemo(LOCAL, { port: demo.port });
  try {
    const recovered = await next(client, "recovered");
    assert.equal(recovered.recovered, false);
    const now = client.position({ group: "room" });
    assert.notEqual(now.epoch, before.epoch);
    // The fresh position counts on: a push now is at offset + 1.
    const other = await connect(restarted.url);
    const push = next(client, "push");
    await other.sendToGroup("room", { after: "restart" });
    await push;
    assert.equal(client.position({ group: "room" }).offset, now.offset + 1);
    other.close();
  } finally {
    client.close();
    await restarted.stop();
  }
});

const redis = redisInstalled();
if (!redis && redisRequired()) throw new Error("redis-server is not installed, and COREPUSH_REQUIRE_REDIS is set");

test("Redis: the stream survives cuts while the reader alternates between two instances",
  { skip: !redis && "redis-server is not installed" }, async () => {
    const server = await startRedis();
    const args = [...LOCAL, "--backend", "redis", "--redis-url", server.url];
    const demos = [];
    try {
      demos.push(await startDemo(args));
      demos.push(await startDemo(args));
      const [a, b] = demos;
      const readerUrl = (attempt) => (attempt % 2 === 0 ? a.url : b.url);
      for (const kind of ["group", "flag"]) {
        await runStream({ kind, readerUrl, pusherUrl: a.url });
      }
    } finally {
      await Promise.all(demos.map((demo) => demo.stop()));
      await server.stop();
    }
  });
