// The console: login, session restore, and the views, all over the
// gateway's WebSocket API. Remote text only ever goes through showRemote.

import { Gateway } from "./rpc.js";
import { showRemote } from "./text.js";

const $ = (id) => document.getElementById(id);
const KEY = "i3.api_key";          // sessionStorage only; cleared by "log out"
const SESSION = "i3.session_id";
const JOINED = "i3.channels";
const MAX_LINES = 500;             // per pane; older lines are dropped from the page
const PERMISSIONS = { info: "status", tell: "tell", channel: "channel_join", admin: "reconnect" };

const scheme = location.protocol === "https:" ? "wss:" : "ws:";
const gateway = new Gateway(`${scheme}//${location.host}/ws`);

const state = {
  html: false,                     // remote text arrives in the HTML colour form
  permissions: new Set(),
  muds: new Map(),                 // name -> mudlist entry
  channels: new Map(),             // name -> [line]
  currentChannel: null,
  tells: new Map(),                // "user@mud" -> [line]
  currentTell: null,
};

// -- small helpers -------------------------------------------------------

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function clock(timestamp) {
  const date = timestamp ? new Date(timestamp) : new Date();
  return date.toTimeString().slice(0, 8);
}

function setConnection(label) {
  $("conn").dataset.state = label;
  $("conn").textContent = label;
}

function joinedChannels() {
  return JSON.parse(sessionStorage.getItem(JOINED) || "[]");
}

function saveJoined() {
  sessionStorage.setItem(JOINED, JSON.stringify([...state.channels.keys()]));
}

function logEvent(method, params) {
  const line = element("li", "event");
  line.append(element("time", null, clock(params && params.timestamp)), " ",
              element("strong", null, method), " ");
  line.append(element("code", null, JSON.stringify(params || {})));
  const log = $("event-log");
  log.prepend(line);
  while (log.children.length > MAX_LINES) log.lastChild.remove();
}

function failure(error) {
  const reason = error.data && (error.data.reason || error.data.i3_message);
  return reason ? `${error.message} (${reason})` : error.message;
}

// -- views ---------------------------------------------------------------

function showView(name) {
  for (const section of document.querySelectorAll(".view")) {
    section.hidden = section.id !== `view-${name}`;
  }
  for (const tab of $("tabs").children) {
    tab.classList.toggle("active", tab.dataset.view === name);
  }
  if (name === "link") refreshLink();
  if (name === "muds") loadMudlist();
}

function applyPermissions() {
  for (const node of document.querySelectorAll("[data-needs]")) {
    node.hidden = !state.permissions.has(node.dataset.needs);
  }
}

// A call with params given as an array is refused before anything runs:
// -32002 when the key lacks the permission, else -32602. Nothing is sent.
async function probePermissions() {
  const granted = new Set();
  for (const [permission, method] of Object.entries(PERMISSIONS)) {
    try {
      await gateway.call(method, []);
    } catch (error) {
      if (error.code !== -32002) granted.add(permission);
    }
  }
  state.permissions = granted;
  applyPermissions();
}

// -- login and session ---------------------------------------------------

function showConsole(shown) {
  $("login").hidden = shown;
  $("console").hidden = !shown;
  $("logout").hidden = !shown;
}

async function startSession() {
  const apiKey = sessionStorage.getItem(KEY);
  let result;
  try {
    result = await gateway.call("authenticate", { api_key: apiKey, colour_out: "html" });
  } catch (error) {
    if (error.code === -32000) logOut(error.message);
    return;
  }
  const saved = sessionStorage.getItem(SESSION);
  if (saved && saved !== result.session_id) {
    try {
      result = await gateway.call("restore_session", { session_id: saved });
    } catch (error) {
      if (error.code !== -32003) throw error;
      logEvent("session_expired", { session_id: "(new session)" });
    }
  }
  sessionStorage.setItem(SESSION, result.session_id);
  $("who-am-i").textContent = result.mud_name;
  state.html = await htmlColourActive(result);
  $("link-colour").textContent = state.html ? "HTML colour form" : "plain text";
  await probePermissions();
  setConnection("online");
  // A restored session is still joined; a new one joins what the tab had open.
  for (const channel of joinedChannels()) {
    if (result.resumed) showJoined(channel);
    else await joinChannel(channel, false);
  }
  refreshLink();
  if (state.permissions.has("info")) loadMudlist();
}

// The colour form is on only when the gateway says so; the authenticate
// result or set_options (read with no params) names it.
async function htmlColourActive(result) {
  if (result.colour_out !== undefined) return result.colour_out === "html";
  try {
    return (await gateway.call("set_options", {})).colour_out === "html";
  } catch {
    return false;
  }
}

function logIn(event) {
  event.preventDefault();
  sessionStorage.setItem(KEY, $("api-key").value);
  $("api-key").value = "";
  $("login-error").textContent = "";
  showConsole(true);
  setConnection("connecting");
  gateway.start();
}

function logOut(message) {
  gateway.stop();
  sessionStorage.clear();
  state.channels.clear();
  state.tells.clear();
  renderChannelTabs();
  renderTellTabs();
  showConsole(false);
  setConnection("offline");
  $("login-error").textContent = typeof message === "string" ? message : "";
}

gateway.addEventListener("open", () => {
  setConnection("authenticating");
  startSession().catch((error) => logEvent("console_error", { message: error.message }));
});
gateway.addEventListener("close", () => {
  if (gateway.wanted) setConnection("reconnecting");
});
gateway.addEventListener("notify", (event) => handleEvent(event.detail.method, event.detail.params));

// -- link ------------------------------------------------------------------

async function refreshLink() {
  if (!state.permissions.has("info")) return;
  try {
    const status = await gateway.call("status");
    $("link-state").textContent = status.state;
    $("link-router").textContent = status.router || "none";
    $("link-address").textContent = status.router_address || "none";
    $("link-uptime").textContent = `${Math.round(status.uptime)} s`;
    const stats = await gateway.call("stats");
    $("link-queued").textContent = String(stats.queued_outbound);
  } catch (error) {
    $("link-state").textContent = failure(error);
  }
}

async function reconnectRouter() {
  try {
    await gateway.call("reconnect");
  } catch (error) {
    logEvent("reconnect_failed", { message: failure(error) });
  }
}

// -- mudlist ---------------------------------------------------------------

async function loadMudlist() {
  try {
    const result = await gateway.call("mudlist");
    state.muds = new Map(result.muds.map((mud) => [mud.name, mud]));
    renderMudlist();
  } catch (error) {
    logEvent("mudlist_failed", { message: failure(error) });
  }
}

function renderMudlist() {
  const filter = $("mud-filter").value.toLowerCase();
  const upOnly = $("mud-up-only").checked;
  const key = $("mud-sort").value;
  const muds = [...state.muds.values()].filter((mud) =>
    (!upOnly || mud.status === "up") &&
    (!filter || `${mud.name} ${mud.driver}`.toLowerCase().includes(filter)));
  muds.sort((a, b) => String(a[key]).localeCompare(String(b[key])) || a.name.localeCompare(b.name));
  const rows = muds.map((mud) => {
    const row = element("tr", `mud ${mud.status}`);
    row.dataset.mud = mud.name;
    for (const value of [mud.name, mud.status, mud.driver, mud.mudlib]) {
      row.append(element("td", null, value == null ? "" : String(value)));
    }
    return row;
  });
  $("mud-rows").replaceChildren(...rows);
}

async function showMudInfo(event) {
  const row = event.target.closest("tr[data-mud]");
  if (!row) return;
  try {
    const info = await gateway.call("mud_info", { mud: row.dataset.mud });
    $("mud-info").textContent = JSON.stringify(info, null, 2);
  } catch (error) {
    $("mud-info").textContent = failure(error);
  }
}

// -- channels --------------------------------------------------------------

function channelLine(entry) {
  const html = state.html && !entry.local;  // our own lines are shown as typed
  const line = element("li", `line ${entry.type || "message"}`);
  line.append(element("time", null, clock(entry.timestamp)), " ");
  const who = `${entry.visname || entry.from_user}@${entry.from_mud}`;
  const body = element("span", "text");
  if (entry.type === "emote" || entry.type === "targeted") {
    // $N (and $O) are names, shown as text around the remote message.
    const names = { $N: who, $O: `${entry.target_visname || entry.target_user}@${entry.target_mud}` };
    const text = entry.type === "targeted" ? entry.message_others : entry.message;
    for (const piece of String(text || "").split(/(\$N|\$O)/)) {
      if (piece in names) body.append(element("span", "name", names[piece]));
      else if (piece) {
        const part = element("span");
        showRemote(part, piece, html);
        body.append(part);
      }
    }
  } else {
    line.append(element("span", "name", `${who}:`), " ");
    showRemote(body, entry.message, html);
  }
  line.append(body);
  return line;
}

function addLine(list, line, shown, pane) {
  list.push(line);
  if (list.length > MAX_LINES) list.shift();
  if (shown) {
    pane.append(line);
    while (pane.children.length > MAX_LINES) pane.firstChild.remove();
    pane.scrollTop = pane.scrollHeight;
  }
}

function renderChannelTabs() {
  const tabs = [...state.channels.keys()].map((name) => {
    const tab = element("button", name === state.currentChannel ? "active" : "", name);
    tab.dataset.channel = name;
    return tab;
  });
  $("chan-tabs").replaceChildren(...tabs);
  $("chan-pane").hidden = !state.currentChannel;
}

async function joinChannel(name, select = true) {
  try {
    await gateway.call("channel_join", { channel: name });
  } catch (error) {
    logEvent("join_failed", { channel: name, message: failure(error) });
    return;
  }
  await showJoined(name, select);
}

async function showJoined(name, select = false) {
  if (!state.channels.has(name)) state.channels.set(name, []);
  saveJoined();
  if (select || !state.currentChannel) await selectChannel(name);
  else renderChannelTabs();
}

async function selectChannel(name, query) {
  state.currentChannel = name;
  $("chan-current").textContent = name;
  renderChannelTabs();
  const params = { channel: name, limit: 100 };
  if (query) params.query = query;
  let lines = [];
  try {
    const result = await gateway.call("channel_history", params);
    lines = result.messages.map(channelLine);
  } catch (error) {
    lines = [element("li", "error", failure(error))];
  }
  if (!query) state.channels.set(name, lines.slice());
  $("chan-lines").replaceChildren(...lines);
  $("chan-lines").scrollTop = $("chan-lines").scrollHeight;
}

async function leaveChannel() {
  const name = state.currentChannel;
  try {
    await gateway.call("channel_leave", { channel: name });
  } catch (error) {
    logEvent("leave_failed", { channel: name, message: failure(error) });
  }
  state.channels.delete(name);
  saveJoined();
  state.currentChannel = state.channels.keys().next().value || null;
  if (state.currentChannel) selectChannel(state.currentChannel);
  else renderChannelTabs();
}

function channelEvent(type, params) {
  const lines = state.channels.get(params.channel);
  if (!lines) return;
  const shown = params.channel === state.currentChannel && !$("chan-search").value;
  addLine(lines, channelLine({ ...params, type }), shown, $("chan-lines"));
}

async function sayOnChannel(event) {
  event.preventDefault();
  const emote = event.submitter && event.submitter.name === "emote";
  const from = $("chan-from").value;
  const text = $("chan-text").value;
  const params = { channel: state.currentChannel, from_user: from, visname: from };
  if (emote) params.emote = text.includes("$N") ? text : `$N ${text}`;
  else params.message = text;
  try {
    await gateway.call(emote ? "channel_emote" : "channel_send", params);
  } catch (error) {
    logEvent("send_failed", { channel: params.channel, message: failure(error) });
    return;
  }
  $("chan-text").value = "";
  // The gateway does not echo our own lines back: show them here.
  channelEvent(emote ? "emote" : "message", {
    channel: params.channel, from_user: from, visname: from, from_mud: $("who-am-i").textContent,
    message: emote ? params.emote : text, timestamp: new Date().toISOString(), local: true,
  });
}

// -- tells -----------------------------------------------------------------

function tellLine(from, text, timestamp, local = false) {
  const line = element("li", "line tell");
  line.append(element("time", null, clock(timestamp)), " ", element("span", "name", `${from}:`), " ");
  const body = element("span", "text");
  showRemote(body, text, state.html && !local);
  line.append(body);
  return line;
}

function renderTellTabs() {
  const tabs = [...state.tells.keys()].map((peer) => {
    const tab = element("button", peer === state.currentTell ? "active" : "", peer);
    tab.dataset.peer = peer;
    return tab;
  });
  $("tell-tabs").replaceChildren(...tabs);
}

function selectTell(peer) {
  state.currentTell = peer;
  const [user, mud] = peer.split("@");
  $("tell-user").value = user;
  $("tell-mud").value = mud;
  $("tell-lines").replaceChildren(...(state.tells.get(peer) || []));
  renderTellTabs();
}

function tellEvent(peer, line) {
  if (!state.tells.has(peer)) state.tells.set(peer, []);
  if (!state.currentTell) selectTell(peer);  // the first conversation opens itself
  addLine(state.tells.get(peer), line, peer === state.currentTell, $("tell-lines"));
  renderTellTabs();
}

async function sendTell(event) {
  event.preventDefault();
  const params = {
    target_user: $("tell-user").value, target_mud: $("tell-mud").value,
    from_user: $("tell-from").value, visname: $("tell-from").value, message: $("tell-text").value,
  };
  try {
    await gateway.call("tell", params);
  } catch (error) {
    logEvent("tell_failed", { message: failure(error) });
    return;
  }
  $("tell-text").value = "";
  const peer = `${params.target_user.toLowerCase()}@${params.target_mud}`;
  if (state.currentTell !== peer) {
    if (!state.tells.has(peer)) state.tells.set(peer, []);
    selectTell(peer);
  }
  tellEvent(peer, tellLine(params.from_user, params.message, undefined, true));
}

// -- who / finger / locate ---------------------------------------------------

function resultTable(rows) {
  const table = element("table", "list");
  for (const cells of rows) {
    const row = element("tr");
    for (const cell of cells) {
      const td = element("td");
      showRemote(td, cell, state.html);
      row.append(td);
    }
    table.append(row);
  }
  return table;
}

async function query(method, params, show) {
  const out = $("query-result");
  out.replaceChildren(element("p", "pending", `${method}…`));
  try {
    const result = await gateway.call(method, params);
    out.replaceChildren(element("h3", null, method), show(result));
  } catch (error) {
    out.replaceChildren(element("p", "error", `${method}: ${failure(error)}`));
  }
}

function who(event) {
  event.preventDefault();
  query("who", { target_mud: $("who-mud").value }, (result) =>
    resultTable(result.users.map((u) => [u.name, `idle ${u.idle}`, u.extra])));
}

function finger(event) {
  event.preventDefault();
  query("finger", { target_mud: $("finger-mud").value, target_user: $("finger-user").value },
    (result) => resultTable(Object.entries(result.user_info)
      .filter(([, value]) => value !== null && value !== "")
      .map(([name, value]) => [name, String(value)])));
}

function locate(event) {
  event.preventDefault();
  query("locate", { target_user: $("locate-user").value }, (result) => result.locations.length
    ? resultTable(result.locations.map((l) => [l.user, l.mud, l.status || "", `idle ${l.idle}`]))
    : element("p", null, "nobody answered"));
}

// -- events ----------------------------------------------------------------

function handleEvent(method, params) {
  logEvent(method, params);
  switch (method) {
    case "channel_message": return channelEvent("message", params);
    case "channel_emote": return channelEvent("emote", params);
    case "channel_targeted": return channelEvent("targeted", params);
    case "tell_received":
    case "emoteto_received":
      return tellEvent(`${params.from_user}@${params.from_mud}`,
        tellLine(`${params.visname || params.from_user}@${params.from_mud}`, params.message, params.timestamp));
    case "mud_online":
    case "mud_offline":
      state.muds.set(params.mud_name, params.info);
      return renderMudlist();
    case "gateway_connected":
    case "gateway_disconnected":
    case "gateway_reconnected":
      return refreshLink();
    default:
      return undefined;
  }
}

// -- wiring ----------------------------------------------------------------

$("login").addEventListener("submit", logIn);
$("logout").addEventListener("click", () => logOut());
$("tabs").addEventListener("click", (event) => {
  if (event.target.dataset.view) showView(event.target.dataset.view);
});
$("link-refresh").addEventListener("click", refreshLink);
$("link-reconnect").addEventListener("click", reconnectRouter);
$("mud-refresh").addEventListener("click", loadMudlist);
for (const id of ["mud-filter", "mud-up-only", "mud-sort"]) {
  $(id).addEventListener("input", renderMudlist);
}
$("mud-rows").addEventListener("click", showMudInfo);
$("chan-join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  joinChannel($("chan-name").value.trim());
  $("chan-name").value = "";
});
$("chan-tabs").addEventListener("click", (event) => {
  if (event.target.dataset.channel) {
    $("chan-search").value = "";
    selectChannel(event.target.dataset.channel);
  }
});
$("chan-search").addEventListener("change", () =>
  selectChannel(state.currentChannel, $("chan-search").value.trim()));
$("chan-leave").addEventListener("click", leaveChannel);
$("chan-say-form").addEventListener("submit", sayOnChannel);
$("tell-tabs").addEventListener("click", (event) => {
  if (event.target.dataset.peer) selectTell(event.target.dataset.peer);
});
$("tell-form").addEventListener("submit", sendTell);
$("who-form").addEventListener("submit", who);
$("finger-form").addEventListener("submit", finger);
$("locate-form").addEventListener("submit", locate);

if (sessionStorage.getItem(KEY)) {
  showConsole(true);
  setConnection("connecting");
  gateway.start();
}
