// The console: login, session restore, the link view, permissions and the
// event dispatch; each other view is a module of its own. Remote text only
// ever goes through text.js's showRemote.

import { channelEvent, joinChannel, joinedChannels, renderChannelTabs, showJoined, wireChannels } from "./channels.js";
import { loadMudlist, renderMudlist, wireMuds } from "./muds.js";
import { wireQueries } from "./queries.js";
import { $, failure, gateway, logEvent, state } from "./shared.js";
import { renderTellTabs, tellEvent, tellLine, wireTells } from "./tells.js";

const KEY = "i3.api_key";          // sessionStorage only; cleared by "log out"
const SESSION = "i3.session_id";
const PERMISSIONS = { info: "status", tell: "tell", channel: "channel_join", admin: "reconnect" };

function setConnection(label) {
  $("conn").dataset.state = label;
  $("conn").textContent = label;
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
wireMuds();
wireChannels();
wireTells();
wireQueries();

if (sessionStorage.getItem(KEY)) {
  showConsole(true);
  setConnection("connecting");
  gateway.start();
}
