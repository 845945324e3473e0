// The who, finger and locate forms and their results.

import { $, element, failure, gateway, state } from "./shared.js";
import { showRemote } from "./text.js";

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

export function wireQueries() {
  $("who-form").addEventListener("submit", who);
  $("finger-form").addEventListener("submit", finger);
  $("locate-form").addEventListener("submit", locate);
}
