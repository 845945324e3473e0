// The channels view: join and leave, a pane per channel with its history
// and a search box, send and emote.

import { $, addLine, clock, element, failure, gateway, logEvent, state } from "./shared.js";
import { showRemote } from "./text.js";

const JOINED = "i3.channels";      // the tab's channels, to join again in a new session

export function joinedChannels() {
  return JSON.parse(sessionStorage.getItem(JOINED) || "[]");
}

function saveJoined() {
  sessionStorage.setItem(JOINED, JSON.stringify([...state.channels.keys()]));
}

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

export function renderChannelTabs() {
  const tabs = [...state.channels.keys()].map((name) => {
    const tab = element("button", name === state.currentChannel ? "active" : "", name);
    tab.dataset.channel = name;
    return tab;
  });
  $("chan-tabs").replaceChildren(...tabs);
  $("chan-pane").hidden = !state.currentChannel;
}

export async function joinChannel(name, select = true) {
  try {
    await gateway.call("channel_join", { channel: name });
  } catch (error) {
    logEvent("join_failed", { channel: name, message: failure(error) });
    return;
  }
  await showJoined(name, select);
}

export async function showJoined(name, select = false) {
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

export function channelEvent(type, params) {
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

export function wireChannels() {
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
}
