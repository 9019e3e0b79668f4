// Network Topology: a layered drawing that stays readable with many networks and instances.
//
// Layers top to bottom: external networks, routers, networks; each network's
// instances and load balancers hang below it in a column (wrapping into more
// columns when there are many), so the picture grows in width with networks
// and in height with instances, never into a hairball. Networks are ordered
// by the barycenter of their routers (and routers by their networks) a few
// times over, which keeps router links short and mostly uncrossed.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const BOX = { w: 130, h: 40 }, GAP = 24, ROW = 54, PER_COLUMN = 8;
const LAYER_Y = [20, 130, 250];
const COLORS = { external: "#f3e5f5", router: "#e0f7fa", network: "#e3f2fd", instance: "#eceff1", loadbalancer: "#fce4ec" };
const STROKES = { external: "#6a1b9a", router: "#00838f", network: "#1565c0", instance: "#546e7a", loadbalancer: "#ad1457" };

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.append(node);
  return node;
}

function mean(values, fallback) {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : fallback;
}

// Positions (centre x, top y) for every node.
function layout(graph) {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const links = new Map(graph.nodes.map((n) => [n.id, []]));
  for (const [a, b] of graph.edges) { links.get(a).push(b); links.get(b).push(a); }
  const ofKind = (...kinds) => graph.nodes.filter((n) => kinds.includes(n.kind));
  const networks = ofKind("network"), routers = ofKind("router"), externals = ofKind("external");
  const leaves = ofKind("instance", "loadbalancer");

  // Each leaf hangs under its first network; the others are drawn as links.
  const hanging = new Map(networks.map((n) => [n.id, []]));
  const loose = [];
  for (const leaf of leaves) {
    const home = links.get(leaf.id).find((id) => hanging.has(id));
    (home ? hanging.get(home) : loose).push(leaf);
  }
  const order = new Map();
  const sortBy = (nodes, key) => nodes.sort((a, b) => key(a) - key(b) || a.label.localeCompare(b.label))
    .forEach((n, i) => order.set(n.id, i));
  sortBy(networks, () => 0);
  sortBy(routers, () => 0);
  const neighbours = (n, pool) => links.get(n.id).filter((id) => pool.has(id)).map((id) => order.get(id));
  const netIds = new Set(networks.map((n) => n.id)), routerIds = new Set(routers.map((n) => n.id));
  for (let round = 0; round < 4; round++) {
    sortBy(routers, (r) => mean(neighbours(r, netIds), order.get(r.id)));
    sortBy(networks, (n) => mean(neighbours(n, routerIds), order.get(n.id)));
  }

  const pos = new Map();
  let x = BOX.w / 2;
  for (const net of networks) {
    const columns = Math.max(1, Math.ceil(hanging.get(net.id).length / PER_COLUMN));
    const width = columns * BOX.w + (columns - 1) * 8;
    const centre = x + (width - BOX.w) / 2;
    pos.set(net.id, { x: centre, y: LAYER_Y[2] });
    hanging.get(net.id).forEach((leaf, i) => {
      const column = Math.floor(i / PER_COLUMN), row = i % PER_COLUMN;
      pos.set(leaf.id, { x: x + column * (BOX.w + 8), y: LAYER_Y[2] + 70 + row * ROW });
    });
    x += width + GAP;
  }
  loose.forEach((leaf, i) => pos.set(leaf.id, { x: x + Math.floor(i / PER_COLUMN) * (BOX.w + 8), y: LAYER_Y[2] + 70 + (i % PER_COLUMN) * ROW }));

  // Routers and external networks sit over the middle of what they connect, pushed apart to not overlap.
  const place = (nodes, y) => {
    const wanted = nodes.map((n) => ({ n, x: mean(links.get(n.id).filter((id) => pos.has(id)).map((id) => pos.get(id).x), 0) }))
      .sort((a, b) => a.x - b.x);
    let next = -Infinity;
    for (const w of wanted) { const at = Math.max(w.x, next); pos.set(w.n.id, { x: at, y }); next = at + BOX.w + GAP; }
  };
  place(routers, LAYER_Y[1]);
  place(externals, LAYER_Y[0]);
  return { pos, byId };
}

function draw(svg, graph, view) {
  const { pos, byId } = layout(graph);
  svg.replaceChildren();
  const root = el("g", { class: "viewport" }, svg);
  for (const [a, b] of graph.edges) {
    const p = pos.get(a), q = pos.get(b);
    if (!p || !q) continue;
    const [top, bottom] = p.y <= q.y ? [p, q] : [q, p];
    const y1 = top.y + BOX.h, y2 = bottom.y, mid = (y1 + y2) / 2;
    el("path", { class: "edge", d: `M${top.x},${y1} C${top.x},${mid} ${bottom.x},${mid} ${bottom.x},${y2}`,
                 "data-from": a, "data-to": b }, root);
  }
  for (const [id, p] of pos) {
    const n = byId.get(id);
    const link = el("a", { href: n.url, class: `node k-${n.kind}`, "data-id": id, "data-kind": n.kind }, root);
    el("title", {}, link).textContent = `${n.kind} ${n.label}${n.detail ? " — " + n.detail : ""}${n.status ? " (" + n.status + ")" : ""}`;
    el("rect", { x: p.x - BOX.w / 2, y: p.y, width: BOX.w, height: BOX.h, rx: n.kind === "router" ? 18 : 5,
                 fill: COLORS[n.kind], stroke: STROKES[n.kind] }, link);
    const label = el("text", { x: p.x, y: p.y + 16, "text-anchor": "middle", "font-weight": "600" }, link);
    label.textContent = n.label.length > 20 ? n.label.slice(0, 19) + "…" : n.label;
    const detail = el("text", { x: p.x, y: p.y + 31, "text-anchor": "middle", fill: "#5f6b78" }, link);
    detail.textContent = (n.detail || n.status || "").slice(0, 24);
  }
  const bounds = root.getBBox();
  if (!view.scale) {  // first drawing: fit everything
    const box = svg.getBoundingClientRect();
    view.scale = Math.min(1.2, box.width / (bounds.width + 40), box.height / (bounds.height + 40));
    view.x = 20 - bounds.x * view.scale;
    view.y = 20 - bounds.y * view.scale;
  }
  apply(svg, view);
}

function apply(svg, view) {
  svg.querySelector(".viewport")?.setAttribute("transform", `translate(${view.x},${view.y}) scale(${view.scale})`);
}

function interact(svg, view) {
  svg.addEventListener("wheel", (event) => {
    event.preventDefault();
    const box = svg.getBoundingClientRect(), factor = event.deltaY < 0 ? 1.15 : 1 / 1.15;
    const mx = event.clientX - box.left, my = event.clientY - box.top;
    view.x = mx - (mx - view.x) * factor; view.y = my - (my - view.y) * factor; view.scale *= factor;
    apply(svg, view);
  }, { passive: false });
  let drag = null;
  svg.addEventListener("pointerdown", (event) => {
    if (event.target.closest("a")) return;
    drag = { x: event.clientX - view.x, y: event.clientY - view.y };
    svg.setPointerCapture(event.pointerId);
  });
  svg.addEventListener("pointermove", (event) => {
    if (!drag) return;
    view.x = event.clientX - drag.x; view.y = event.clientY - drag.y; apply(svg, view);
  });
  svg.addEventListener("pointerup", () => { drag = null; });
}

for (const holder of document.querySelectorAll(".topology[data-source]")) {
  const svg = holder.querySelector("svg"), view = {};
  let last = "";
  interact(svg, view);
  const poll = async () => {
    try {
      const response = await fetch(holder.dataset.source);
      if (response.ok) {
        const text = await response.text();
        if (text !== last) {
          last = text;
          const started = performance.now();
          draw(svg, JSON.parse(text), view);
          holder.dataset.renderMs = (performance.now() - started).toFixed(1);
          holder.dataset.nodes = svg.querySelectorAll(".node").length;
        }
      }
    } finally {
      setTimeout(poll, 2000);
    }
  };
  poll();
}
