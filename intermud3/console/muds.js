// The mudlist view: filter, sort, live up/down, mud_info on a click.

import { $, element, failure, gateway, logEvent, state } from "./shared.js";

export async function loadMudlist() {
  try {
    const result = await gateway.call("mudlist");
    state.muds = new Map(result.muds.map((mud) => [mud.name, mud]));
    renderMudlist();
  } catch (error) {
    logEvent("mudlist_failed", { message: failure(error) });
  }
}

export function renderMudlist() {
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

export function wireMuds() {
  $("mud-refresh").addEventListener("click", loadMudlist);
  for (const id of ["mud-filter", "mud-up-only", "mud-sort"]) {
    $(id).addEventListener("input", renderMudlist);
  }
  $("mud-rows").addEventListener("click", showMudInfo);
}
