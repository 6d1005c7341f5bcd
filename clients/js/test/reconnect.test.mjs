// Reconnecting against a real push_demo: after the server closes the socket, and across a
// restart of the server on the same port; backoff bounded; groups and flag joined again.

import assert from "node:assert/strict";
import { test } from "node:test";

import { connect } from "../corepush.js";
import { next, startDemo } from "./helpers.mjs";

const FAST = { initial: 20, max: 160, factor: 2, jitter: 0.5 };

test("closed by the server: reconnects and joins its groups and binds its flag again", async () => {
  const demo = await startDemo();
  const a = await connect(demo.url, { backoff: FAST });
  const b = await connect(demo.url);
  try {
    await a.join("room");
    await a.bind("alice");
    const before = (await a.whoami()).clientId;
    const events = [];
    for (const type of ["close", "reconnecting", "open", "reconnect"]) {
      a.on(type, () => events.push(type));
    }
    const resubscribed = next(a, "resubscribed");
    assert.equal(await b.closeByFlag("alice"), 1);
    await resubscribed;
    assert.deepEqual(events, ["close", "reconnecting", "open", "reconnect"]);
    const after = (await a.whoami()).clientId;
    assert.notEqual(after, before);
    assert.equal(await b.flagExists("alice"), true);
    assert.equal(await b.groupCount("room"), 1);
    const push = next(a, "push");
    assert.equal(await b.sendToGroup("room", { back: true }), 1);
    assert.deepEqual((await push).data, { back: true });
  } finally {
    a.close();
    b.close();
    await demo.stop();
  }
});

test("the server restarts on the same port: backoff grows, stays bounded, and it reconnects", async () => {
  const demo = await startDemo();
  const client = await connect(demo.url, { backoff: FAST });
  await client.join("room");
  const delays = [];
  client.on("reconnecting", ({ attempt, delay }) => delays.push({ attempt, delay }));
  const closed = next(client, "close");
  await demo.stop();
  await closed;
  // Let it fail a few times against the closed port.
  await next(client, "reconnecting", ({ attempt }) => attempt >= 6);
  const restarted = await startDemo([], { port: demo.port });
  try {
    await next(client, "resubscribed");
    assert.ok(client.connected);
    delays.forEach(({ attempt, delay }, i) => {
      assert.equal(attempt, i + 1);
      const base = Math.min(FAST.max, FAST.initial * FAST.factor ** (attempt - 1));
      assert.ok(delay <= base && delay >= base * (1 - FAST.jitter) - 1,
        `attempt ${attempt}: delay ${delay} outside [${base / 2}, ${base}]`);
    });
    assert.equal(await client.groupCount("room"), 1);
  } finally {
    client.close();
    await restarted.stop();
  }
});

test("maxRetries: the first connect rejects when nothing listens", async () => {
  const demo = await startDemo();
  await demo.stop();
  await assert.rejects(
    connect(demo.url, { backoff: FAST, maxRetries: 3 }),
    { code: "not-connected" },
  );
});

test("restore: on a reconnect the flag's kept context (data, groups) comes back before recovery", async () => {
  const demo = await startDemo(["--keep-ms", "60000", "--history", "1000"]);
  const a = await connect(demo.url, { backoff: FAST, restore: true });
  const b = await connect(demo.url);
  try {
    await a.bind("alice", { position: true });
    await a.set("theme", "dark");
    const aId = (await a.whoami()).clientId;
    await a.join("known");
    const restored = next(a, "restored");
    const recovered = next(a, "recovered");
    assert.equal(await b.closeByFlag("alice"), 1);
    // Pushed while a is away: kept in the flag's history, recovered after the restore.
    assert.equal(await b.sendByFlag("alice", { missed: 1 }), 0);
    const r = await restored;
    assert.equal(r.restored, true);
    assert.equal(r.flag, "alice");
    assert.equal(r.from, aId);
    assert.deepEqual(r.groups, ["known"]);
    const rec = await recovered;
    assert.equal(rec.flag, "alice");
    assert.equal(rec.recovered, true);
    assert.equal(rec.missed, 1);
    assert.equal(await a.get("theme"), "dark");
    assert.equal(await b.groupCount("known"), 1);
  } finally {
    a.close();
    b.close();
    await demo.stop();
  }
});
