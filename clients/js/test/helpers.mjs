// Test helpers: a real push_demo process on a free port, a private redis-server, waiting for
// events with a deadline.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** How long any single wait may take before the test fails. */
export const WAIT_MS = 20000;

/** The push_demo executable: $COREPUSH_PUSH_DEMO, else the debug or release build of the
 * example (`cargo build --example push_demo`). */
export function demoPath() {
  const candidates = [
    process.env.COREPUSH_PUSH_DEMO,
    join(ROOT, "target/debug/examples/push_demo"),
    join(ROOT, "target/release/examples/push_demo"),
  ].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error("no push_demo binary: run `cargo build --example push_demo` "
      + "or set COREPUSH_PUSH_DEMO");
  }
  return found;
}

/** Whether push_demo takes a flag (`--history`, `--keep-ms`): its --help names it. */
export function demoHas(flag) {
  const out = spawnSync(demoPath(), ["--help"], { encoding: "utf8" });
  return `${out.stdout}${out.stderr}`.includes(flag);
}

/** Starts push_demo with `args` (`--port 0` unless a port is given); resolves once it printed
 * its listening line: `{url, port, child, stop(), pause(), resume()}`. */
export function startDemo(args = [], { port = 0 } = {}) {
  const child = spawn(demoPath(), ["--port", String(port), "--workers", "2", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { RUST_LOG: "warn", ...process.env },
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => { stderr += chunk; });
  return new Promise((resolvePromise, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`push_demo did not listen within ${WAIT_MS} ms: ${stderr}`));
    }, WAIT_MS);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`push_demo exited (${code}) before listening: ${stderr}`));
    });
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const match = out.match(/listening on ws:\/\/([^ ]+):(\d+)\//);
      if (!match) return;
      clearTimeout(timer);
      child.removeAllListeners("exit");
      const demo = {
        url: `ws://127.0.0.1:${match[2]}/`,
        port: Number(match[2]),
        child,
        stop: () => stopChild(child),
        pause: () => stopped(child),
        resume: () => child.kill("SIGCONT"),
      };
      resolvePromise(demo);
    });
  });
}

/** SIGSTOP; resolves once every thread of the process is stopped (a thread that was running
 * may finish its step first), so that nothing it receives afterwards is answered. */
function stopped(child) {
  child.kill("SIGSTOP");
  const deadline = Date.now() + WAIT_MS;
  const tasks = `/proc/${child.pid}/task`;
  const allStopped = () => readdirSync(tasks).every((task) => {
    const stat = readFileSync(`${tasks}/${task}/stat`, "utf8");
    return /^\d+ \(.*\) [Tt] /s.test(stat);
  });
  return new Promise((done, fail) => {
    const check = () => {
      if (allStopped()) done();
      else if (Date.now() > deadline) fail(new Error("push_demo did not stop"));
      else setImmediate(check);
    };
    check();
  });
}

/** SIGKILL, and resolves once the process is gone (its sockets closed by the kernel). */
function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    child.once("exit", () => done());
    child.kill("SIGKILL");
  });
}

/** A free TCP port of 127.0.0.1. */
export function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.on("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

/** Whether tests must fail rather than skip without Redis (CI sets it). */
export function redisRequired() {
  const v = process.env.COREPUSH_REQUIRE_REDIS;
  return Boolean(v) && v !== "0";
}

/** Whether redis-server is installed. */
export function redisInstalled() {
  return spawnSync("redis-server", ["--version"]).status === 0;
}

/** A private redis-server on a free port, nothing persisted: `{url, stop()}`. */
export async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "corepush-js-redis-"));
  const child = spawn("redis-server", [
    "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
    "--dir", dir,
  ], { stdio: ["ignore", "pipe", "pipe"] });
  await new Promise((done, fail) => {
    let out = "";
    const timer = setTimeout(() => fail(new Error("redis-server did not start")), WAIT_MS);
    child.stdout.on("data", (chunk) => {
      out += chunk;
      if (out.includes("Ready to accept connections")) {
        clearTimeout(timer);
        done();
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`redis-server exited (${code}): ${out}`));
    });
  });
  child.removeAllListeners("exit");
  return {
    url: `redis://127.0.0.1:${port}/`,
    stop: async () => {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves with the `detail` of the next `type` event of `client` that `accept` takes;
 * rejects after WAIT_MS. */
export function next(client, type, accept = () => true) {
  return new Promise((done, fail) => {
    const timer = setTimeout(() => {
      off();
      fail(new Error(`no ${type} event within ${WAIT_MS} ms`));
    }, WAIT_MS);
    const off = client.on(type, (detail) => {
      if (!accept(detail)) return;
      clearTimeout(timer);
      off();
      done(detail);
    });
  });
}

/** Resolves once `predicate()` holds, checked after each `type` event of `client`. */
export function until(client, type, predicate) {
  if (predicate()) return Promise.resolve();
  return next(client, type, () => predicate()).then(() => undefined);
}
