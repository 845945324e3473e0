// What every view shares: the connection, the page state, DOM helpers and
// the event log.

import { Gateway } from "./rpc.js";

export const $ = (id) => document.getElementById(id);
export const MAX_LINES = 500;      // per pane; older lines are dropped from the page

const scheme = location.protocol === "https:" ? "wss:" : "ws:";
export const gateway = new Gateway(`${scheme}//${location.host}/ws`);

export const state = {
  html: false,                     // remote text arrives in the HTML colour form
  permissions: new Set(),
  muds: new Map(),                 // name -> mudlist entry
  channels: new Map(),             // name -> [line]
  currentChannel: null,
  tells: new Map(),                // "user@mud" -> [line]
  currentTell: null,
};

export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function clock(timestamp) {
  const date = timestamp ? new Date(timestamp) : new Date();
  return date.toTimeString().slice(0, 8);
}

export function logEvent(method, params) {
  const line = element("li", "event");
  line.append(element("time", null, clock(params && params.timestamp)), " ",
              element("strong", null, method), " ");
  line.append(element("code", null, JSON.stringify(params || {})));
  const log = $("event-log");
  log.prepend(line);
  while (log.children.length > MAX_LINES) log.lastChild.remove();
}

export function failure(error) {
  const reason = error.data && (error.data.reason || error.data.i3_message);
  return reason ? `${error.message} (${reason})` : error.message;
}

export function addLine(list, line, shown, pane) {
  list.push(line);
  if (list.length > MAX_LINES) list.shift();
  if (shown) {
    pane.append(line);
    while (pane.children.length > MAX_LINES) pane.firstChild.remove();
    pane.scrollTop = pane.scrollHeight;
  }
}
