// The client against a real push_demo: ops as promises, replies matched by id, errors and
// timeouts, pushes as events, pending calls rejected when the connection drops.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { connect, CorePushError } from "../corepush.js";
import { next, startDemo } from "./helpers.mjs";

let demo;
before(async () => { demo = await startDemo(); });
after(async () => { await demo.stop(); });

test("whoami answers this connection's id", async () => {
  const client = await connect(demo.url);
  try {
    const me = await client.whoami();
    assert.match(me.clientId, /^\d+$/);
    assert.ok(me.worker === 0 || me.worker === 1);
    assert.equal(await client.exists(me.clientId), true);
  } finally {
    client.close();
  }
});

test("replies are matched by id: many calls in flight at once each get their own", async () => {
  const client = await connect(demo.url);
  try {
    const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
    await Promise.all(keys.map((k, i) => client.set(k, { i })));
    // Interleave ops with different results; each promise must get its own reply.
    const results = await Promise.all(keys.flatMap((k, i) => [
      client.get(k),
      client.groupCount(`empty-${i}`),
      client.flagExists(`nobody-${i}`),
    ]));
    keys.forEach((_, i) => {
      assert.deepEqual(results[3 * i], { i });
      assert.equal(results[3 * i + 1], 0);
      assert.equal(results[3 * i + 2], false);
    });
  } finally {
    client.close();
  }
});

test("an error reply rejects with the server's message; the connection stays open", async () => {
  const client = await connect(demo.url);
  try {
    await assert.rejects(client.call("noSuchOp"), (e) => {
      assert.ok(e instanceof CorePushError);
      assert.equal(e.code, "server");
      assert.match(e.message, /unknown op/);
      return true;
    });
    await assert.rejects(client.call("send", { data: 1 }), { code: "server" });
    assert.equal(typeof (await client.count()), "number");
  } finally {
    client.close();
  }
});

test("pushes arrive as events; helpers name the protocol's ops", async () => {
  const [a, b] = await Promise.all([connect(demo.url), connect(demo.url)]);
  try {
    const aId = (await a.whoami()).clientId;
    assert.equal(await a.join("room"), true);
    assert.equal(await a.bind("alice"), true);
    let push = next(a, "push");
    assert.equal(await b.sendToGroup("room", { hi: "room" }), 1);
    assert.deepEqual((await push).data, { hi: "room" });
    push = next(a, "push");
    assert.equal(await b.sendRawByFlag("alice", "plain text"), 1);
    const raw = await push;
    assert.equal(raw.text, "plain text");
    assert.equal(raw.data, undefined);
    push = next(a, "push");
    assert.equal(await b.send(aId, [1, 2, 3]), 1);
    assert.deepEqual((await push).data, [1, 2, 3]);
    // Excluded: b sends to the group except a, then to a alone; a sees only the second.
    push = next(a, "push");
    assert.equal(await b.sendToGroup("room", "not for a", { except: aId }), 0);
    assert.equal(await b.send(aId, "for a"), 1);
    assert.equal((await push).data, "for a");
  } finally {
    a.close();
    b.close();
  }
});

test("a call rejects with timeout when no reply comes in time", async () => {
  const client = await connect(demo.url, { backoff: { initial: 50, max: 200 } });
  await demo.pause();
  try {
    await assert.rejects(client.call("count", {}, { timeout: 300 }), { code: "timeout" });
  } finally {
    demo.resume();
  }
  // Still usable; the late reply went nowhere.
  assert.equal(typeof (await client.count()), "number");
  client.close();
});

test("calls in flight reject when the connection drops; calls while down reject at once", async () => {
  const own = await startDemo();
  const client = await connect(own.url, { backoff: { initial: 50, max: 200 } });
  const me = (await client.whoami()).clientId;
  await own.pause();
  const inFlight = assert.rejects(client.count(), { code: "disconnected" });
  const closed = next(client, "close");
  await own.stop();
  await inFlight;
  assert.equal((await closed).willReconnect, true);
  await assert.rejects(client.count(), { code: "not-connected" });
  const again = await startDemo([], { port: own.port });
  try {
    await next(client, "reconnect");
    assert.notEqual((await client.whoami()).clientId, me);
    // Closing itself: the reply comes first, then the close.
    const dropped = next(client, "close");
    assert.equal(await client.closeClients((await client.whoami()).clientId), 1);
    await dropped;
    client.close();
    await assert.rejects(client.count(), { code: "closed" });
  } finally {
    client.close();
    await again.stop();
  }
});
