// The load balancer's status tree and traffic (what haproxy counted), polled:
// often while something is pending, every few seconds after.
"use strict";

const statusBadge = (value) => {
  const span = document.createElement("span");
  span.className = `status s-${(value || "unknown").toLowerCase()}`;
  span.textContent = value || "—";
  return span;
};

function treeItem(kind, item, children) {
  const li = document.createElement("li");
  li.append(`${kind} ${item.name || item.address || item.id.slice(0, 8)} `);
  if (item.provisioning_status) li.append(statusBadge(item.provisioning_status), " ");
  if (item.operating_status) li.append(statusBadge(item.operating_status));
  if (children.length) { const ul = document.createElement("ul"); ul.append(...children); li.append(ul); }
  return li;
}

function traffic(stats) {
  const count = (n, what) => `${n.toLocaleString("en")} ${what}`;
  return `Traffic: ${count(stats.active_connections, "open connections")}, ${count(stats.total_connections, "in all")}; `
    + `${count(stats.bytes_in, "bytes in")}, ${count(stats.bytes_out, "bytes out")}; `
    + `${count(stats.request_errors, "request errors")}`;
}

function render(section, state) {
  const lb = state.tree;
  const members = (pool) => (pool.members || []).map((m) => treeItem("member", m, []));
  const monitor = (pool) => (pool.health_monitor ? [treeItem("health monitor", pool.health_monitor, [])] : []);
  const pools = (listener) => (listener.pools || []).map((p) => treeItem("pool", p, [...members(p), ...monitor(p)]));
  const listeners = (lb.listeners || []).map((l) => treeItem("listener", l, pools(l)));
  section.querySelector(".tree").replaceChildren(treeItem("load balancer", lb, listeners));
  const line = section.querySelector(".traffic");
  line.textContent = traffic(state.stats);
  line.dataset.connections = state.stats.total_connections;
}

for (const section of document.querySelectorAll("[data-status]")) {
  const poll = async () => {
    try {
      const response = await fetch(section.dataset.status);
      if (response.ok) {
        const state = await response.json();
        render(section, state);
        const busy = JSON.stringify(state.tree).includes("PENDING_");
        section.dataset.settled = busy ? "no" : "yes";
      }
    } finally {
      setTimeout(poll, section.dataset.settled === "yes" ? 3000 : 700);
    }
  };
  poll();
}
