// Network Topology: a layered drawing that stays readable with many networks and instances.
//
// Each router makes a block: the router, under it the networks it connects
// (ordered by barycenter so links stay short), and under each network its
// instances and load balancers in columns of a few. Networks without a
// router share one block. Blocks are packed into rows to fit the window's
// shape, and each row shows, on top, the external networks its routers use
// (an external network may so appear once per row), so no link crosses
// another row: the picture grows with the numbers, never into a hairball.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const BOX = { w: 130, h: 40 }, GAP = 24, ROW = 54, PER_COLUMN = 6, COLUMN = BOX.w + 8;
const LAYER = { external: 0, router: 110, network: 220, leaves: 290 };
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

// Blocks of (router, networks, leaves under each network), in barycenter order.
function blocks(graph) {
  const links = new Map(graph.nodes.map((n) => [n.id, []]));
  for (const [a, b] of graph.edges) { links.get(a).push(b); links.get(b).push(a); }
  const ofKind = (...kinds) => graph.nodes.filter((n) => kinds.includes(n.kind));
  const networks = ofKind("network"), routers = ofKind("router");
  const order = new Map();
  const sortBy = (nodes, key) => nodes.sort((a, b) => key(a) - key(b) || a.label.localeCompare(b.label))
    .forEach((n, i) => order.set(n.id, i));
  const netIds = new Set(networks.map((n) => n.id)), routerIds = new Set(routers.map((n) => n.id));
  const neighbours = (n, pool) => links.get(n.id).filter((id) => pool.has(id)).map((id) => order.get(id));
  sortBy(networks, () => 0);
  sortBy(routers, () => 0);
  for (let round = 0; round < 4; round++) {
    sortBy(routers, (r) => mean(neighbours(r, netIds), order.get(r.id)));
    sortBy(networks, (n) => mean(neighbours(n, routerIds), order.get(n.id)));
  }
  const leaves = new Map(networks.map((n) => [n.id, []]));
  const loose = [];
  const byLabel = (a, b) => a.kind.localeCompare(b.kind) || a.label.localeCompare(b.label);
  for (const leaf of ofKind("instance", "loadbalancer").sort(byLabel)) {
    const home = links.get(leaf.id).find((id) => leaves.has(id));
    (home ? leaves.get(home) : loose).push(leaf);
  }
  const owner = new Map();
  for (const r of routers) for (const id of links.get(r.id)) if (netIds.has(id) && !owner.has(id)) owner.set(id, r.id);
  const made = routers.map((r) => ({ router: r, networks: networks.filter((n) => owner.get(n.id) === r.id) }));
  const alone = networks.filter((n) => !owner.has(n.id));
  if (alone.length || loose.length) made.push({ router: null, networks: alone, loose });
  for (const block of made) {
    block.columns = block.networks.map((n) => Math.max(1, Math.ceil(leaves.get(n.id).length / PER_COLUMN)));
    const looseColumns = Math.ceil((block.loose || []).length / PER_COLUMN);
    block.width = [...block.columns, looseColumns].reduce((a, c) => a + c * COLUMN + GAP, 0) || COLUMN;
    const deepest = Math.max(0, ...block.networks.map((n) => leaves.get(n.id).length), (block.loose || []).length);
    block.height = LAYER.leaves + Math.min(deepest, PER_COLUMN) * ROW + GAP;
  }
  return { made, links, leaves };
}

// Positions (key -> {node, x: centre, y: top}); a node's key is its id, an external network's is id@row.
function layout(graph, aspect) {
  const { made, links, leaves } = blocks(graph);
  const externals = graph.nodes.filter((n) => n.kind === "external");
  const area = made.reduce((a, b) => a + b.width * b.height, 0);
  const rowWidth = Math.max(Math.sqrt(area * aspect), ...made.map((b) => b.width));
  const pos = new Map(), keyOf = new Map(), rowOf = new Map();  // keyOf: "row:id" of an external network -> key
  let x = 0, top = 0, rowHeight = 0, row = 0, rowRouters = [];
  const closeRow = () => {
    // The external networks this row's routers use, over the middle of them, pushed apart.
    const wanted = externals.map((e) => ({ e, xs: rowRouters.filter((r) => links.get(r.id).includes(e.id)).map((r) => pos.get(r.id).x) }))
      .filter((w) => w.xs.length || (row === 0 && !links.get(w.e.id).length))
      .map((w) => ({ e: w.e, x: mean(w.xs, 0) })).sort((a, b) => a.x - b.x);
    let next = -Infinity;
    for (const w of wanted) {
      const at = Math.max(w.x, next);
      const key = `${w.e.id}@${row}`;
      pos.set(key, { node: w.e, x: at, y: top + LAYER.external });
      keyOf.set(`${row}:${w.e.id}`, key);
      next = at + BOX.w + GAP;
    }
  };
  for (const block of made) {
    if (x > 0 && x + block.width > rowWidth) {
      closeRow();
      top += rowHeight + 40; x = 0; rowHeight = 0; row += 1; rowRouters = [];
    }
    let cx = x;
    block.networks.forEach((net, i) => {
      const width = block.columns[i] * COLUMN - 8;
      pos.set(net.id, { node: net, x: cx + width / 2, y: top + LAYER.network });
      leaves.get(net.id).forEach((leaf, k) => pos.set(leaf.id, {
        node: leaf, x: cx + Math.floor(k / PER_COLUMN) * COLUMN + BOX.w / 2, y: top + LAYER.leaves + (k % PER_COLUMN) * ROW }));
      cx += width + 8 + GAP;
    });
    (block.loose || []).forEach((leaf, k) => pos.set(leaf.id, {
      node: leaf, x: cx + Math.floor(k / PER_COLUMN) * COLUMN + BOX.w / 2, y: top + LAYER.leaves + (k % PER_COLUMN) * ROW }));
    if (block.router) {
      const xs = block.networks.map((n) => pos.get(n.id).x);
      pos.set(block.router.id, { node: block.router, x: mean(xs, x + BOX.w / 2), y: top + LAYER.router });
      rowOf.set(block.router.id, row);
      rowRouters.push(block.router);
    }
    x += block.width;
    rowHeight = Math.max(rowHeight, block.height);
  }
  closeRow();
  // An edge to an external network goes to its copy in the other end's row.
  const place = (id, other) => (pos.has(id) ? id : keyOf.get(`${rowOf.get(other) ?? 0}:${id}`));
  const edges = graph.edges.map(([a, b]) => [a, b, place(a, b), place(b, a)]).filter(([, , ka, kb]) => ka && kb);
  return { pos, edges };
}

function draw(svg, graph, view) {
  const box = svg.getBoundingClientRect();
  const { pos, edges } = layout(graph, box.width / Math.max(box.height, 1));
  svg.replaceChildren();
  el("title", { id: "topology-title" }, svg).textContent = "Network topology";
  const count = (kind, what) => `${graph.nodes.filter((n) => n.kind === kind).length} ${what}`;
  el("desc", { id: "topology-desc" }, svg).textContent = [
    count("external", "external networks"), count("router", "routers"), count("network", "networks"),
    count("instance", "instances"), count("loadbalancer", "load balancers"),
  ].join(", ") + `, with ${graph.edges.length} links; the links are listed below the drawing.`;
  const root = el("g", { class: "viewport" }, svg);
  for (const [a, b, ka, kb] of edges) {
    const p = pos.get(ka), q = pos.get(kb);
    const [upper, lower] = p.y <= q.y ? [p, q] : [q, p];
    const y1 = upper.y + BOX.h, y2 = lower.y, mid = (y1 + y2) / 2;
    el("path", { class: "edge", d: `M${upper.x},${y1} C${upper.x},${mid} ${lower.x},${mid} ${lower.x},${y2}`,
                 "data-from": a, "data-to": b }, root);
  }
  for (const [key, p] of pos) {
    const n = p.node;
    const link = el("a", { href: n.url, class: `node k-${n.kind}`, "data-id": n.id, "data-kind": n.kind, "data-key": key }, root);
    el("title", {}, link).textContent = `${n.kind} ${n.label}${n.detail ? " — " + n.detail : ""}${n.status ? " (" + n.status + ")" : ""}`;
    el("rect", { x: p.x - BOX.w / 2, y: p.y, width: BOX.w, height: BOX.h, rx: n.kind === "router" ? 18 : 5,
                 fill: COLORS[n.kind], stroke: STROKES[n.kind] }, link);
    const label = el("text", { x: p.x, y: p.y + 16, "text-anchor": "middle", "font-weight": "600" }, link);
    label.textContent = n.label.length > 20 ? n.label.slice(0, 19) + "…" : n.label;
    const detail = el("text", { x: p.x, y: p.y + 31, "text-anchor": "middle", fill: "#4f5a66" }, link);
    detail.textContent = (n.detail || n.status || "").slice(0, 24);
  }
  if (!view.scale) {  // first drawing: fit everything
    const bounds = root.getBBox();
    view.scale = Math.min(1.2, (box.width - 40) / bounds.width, (box.height - 40) / bounds.height);
    view.x = 20 - bounds.x * view.scale;
    view.y = 20 - bounds.y * view.scale;
  }
  apply(svg, view);
}

// The drawing's links as a list of sentences with links, for screen readers and keyboards.
function listLinks(list, graph) {
  const nodes = new Map(graph.nodes.map((n) => [n.id, n]));
  const named = (n) => {
    const a = document.createElement("a");
    a.href = n.url;
    a.textContent = `${{ external: "external network", loadbalancer: "load balancer" }[n.kind] || n.kind} ${n.label}`;
    return a;
  };
  list.replaceChildren(...graph.edges.map(([a, b]) => {
    const li = document.createElement("li");
    li.append(named(nodes.get(a)), " is linked to ", named(nodes.get(b)));
    return li;
  }));
  if (!graph.edges.length) list.append(Object.assign(document.createElement("li"), { textContent: "No links." }));
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
  const list = document.getElementById(holder.dataset.links);
  let last = "";
  interact(svg, view);
  // A window that changes size gets the whole drawing fitted again.
  window.addEventListener("resize", () => {
    if (!last) return;
    view.scale = 0;
    draw(svg, JSON.parse(last), view);
  });
  const poll = async () => {
    try {
      const response = await fetch(holder.dataset.source);
      if (response.ok) {
        const text = await response.text();
        if (text !== last) {
          last = text;
          const started = performance.now();
          const graph = JSON.parse(text);
          draw(svg, graph, view);
          listLinks(list, graph);
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
