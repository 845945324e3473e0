// The tells view: a conversation per remote player.

import { $, addLine, clock, element, failure, gateway, logEvent, state } from "./shared.js";
import { showRemote } from "./text.js";

export function tellLine(from, text, timestamp, local = false) {
  const line = element("li", "line tell");
  line.append(element("time", null, clock(timestamp)), " ", element("span", "name", `${from}:`), " ");
  const body = element("span", "text");
  showRemote(body, text, state.html && !local);
  line.append(body);
  return line;
}

export function renderTellTabs() {
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

export function tellEvent(peer, line) {
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

export function wireTells() {
  $("tell-tabs").addEventListener("click", (event) => {
    if (event.target.dataset.peer) selectTell(event.target.dataset.peer);
  });
  $("tell-form").addEventListener("submit", sendTell);
}
