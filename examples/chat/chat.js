// The chat page: one room at a time, over corepush.js. Everything pushed names its room, which
// is how the client counts each room's stream position and recovers what it missed.
import { Client } from "/corepush.js";

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const retry = Number(params.get("retry")) || 250;

const client = new Client(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/`, {
  backoff: { initial: retry, max: Math.max(retry, 5000) },
  subscriptionOf: (data) => (data && typeof data.room === "string" ? { group: data.room } : null),
});
// `missed` counts the chat messages that come back while a reconnect recovers.
const state = { name: null, room: null, recoveries: [], missed: null };
// For tests and the console.
window.chat = { client, state };

function status(text, kind) {
  $("status").textContent = text;
  $("status").className = kind;
}

function line(kind, build) {
  const li = document.createElement("li");
  li.className = kind;
  build(li);
  const log = $("log");
  const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  log.append(li);
  if (atEnd) log.scrollTop = log.scrollHeight;
}

function notice(text) {
  line("notice", (li) => { li.textContent = text; });
}

client.on("open", () => status("online", "online"));
client.on("close", () => status("reconnecting…", "offline"));
client.on("reconnecting", ({ attempt, delay }) => status(`reconnecting (${attempt}, ${delay} ms)…`, "offline"));
client.on("reconnect", () => { state.missed = 0; });
client.on("recovered", (r) => {
  state.recoveries.push(r);
  notice(r.recovered
    ? `back online: ${state.missed} missed message(s) recovered`
    : "back online: the history did not reach back far enough; some messages may be missing");
  state.missed = null;
});
client.on("push", ({ data }) => {
  if (!data || data.room !== state.room) return;
  if (data.type === "message") {
    if (state.missed !== null) state.missed += 1;
    line("message", (li) => {
      const from = document.createElement("b");
      from.textContent = data.from;
      li.append(from, document.createTextNode(data.text));
      li.dataset.from = data.from;
      li.dataset.at = String(data.at);
    });
  } else if (data.type === "presence") {
    const list = $("members");
    list.replaceChildren(...data.members.map((name) => {
      const li = document.createElement("li");
      li.textContent = name;
      return li;
    }));
  }
});

async function enter(name, room) {
  await client.start();
  if (state.room && state.room !== room) await client.leave(state.room);
  await client.bind(name);
  state.name = name;
  state.room = room;
  $("room-title").textContent = `Room ${room}`;
  $("log").replaceChildren();
  notice(`you are ${name} in ${room}`);
  await client.join(room, { position: true });
  $("text").disabled = false;
  $("send").disabled = false;
  $("text").focus();
}

$("enter").addEventListener("submit", (event) => {
  event.preventDefault();
  enter($("name").value.trim(), $("room").value.trim()).catch((e) => notice(String(e.message || e)));
});

$("say").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("text").value;
  if (!text || !state.room) return;
  client.call("say", { room: state.room, text })
    .then(() => { $("text").value = ""; })
    .catch((e) => notice(`not sent: ${e.message}`));
});

client.start().catch((e) => notice(String(e.message || e)));
if (params.get("name") && params.get("room")) {
  $("name").value = params.get("name");
  $("room").value = params.get("room");
  enter(params.get("name"), params.get("room")).catch((e) => notice(String(e.message || e)));
}
