// Network Topology: draws the boxes and lines the server laid out (web/topology.py), tells the
// links as sentences for screen readers and keyboards, and asks again every few seconds.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const COLORS = { external: "#f3e5f5", router: "#e0f7fa", network: "#e3f2fd", instance: "#eceff1", loadbalancer: "#fce4ec", member: "#fff" };
const STROKES = { external: "#6a1b9a", router: "#00838f", network: "#1565c0", instance: "#546e7a", loadbalancer: "#ad1457", member: "#ad1457" };
const NAMES = { external: "external network", loadbalancer: "load balancer" };
const LABELLED = { gateway: 0.8, interface: 0.75, member: 0.8 };  // where along the line its label sits

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.append(node);
  return node;
}

const cut = (text, length) => (text.length > length ? text.slice(0, length - 1) + "…" : text);

// A line's path (a cubic Bézier) between two boxes: from the upper one's bottom to the lower
// one's top, or, from a load balancer to a member beside it, a loop under both.
function curve(line, p, q) {
  if (line.kind === "member") {
    const x1 = p.x + p.w / 2, x2 = q.x + q.w / 2, y1 = p.y + p.h, y2 = q.y + q.h;
    const dip = Math.max(y1, y2) + 20 + Math.min(40, Math.abs(x2 - x1) / 10);  // the farther, the lower
    return [[x1, y1], [x1, dip], [x2, dip], [x2, y2]];
  }
  // Straight down where one box spans the other's middle (a network under its instances).
  const [upper, lower] = p.y <= q.y ? [p, q] : [q, p];
  const meet = (box, x) => Math.min(Math.max(x, box.x + 12), box.x + box.w - 12);
  const x1 = meet(upper, lower.x + lower.w / 2), x2 = meet(lower, x1);
  const y1 = upper.y + upper.h, mid = (y1 + lower.y) / 2;
  return [[x1, y1], [x1, mid], [x2, mid], [x2, lower.y]];
}

function at(points, t) {
  const c = [(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3];
  return [0, 1].map((i) => points.reduce((sum, point, k) => sum + point[i] * c[k], 0));
}

function badge(parent, status, x, y) {
  const text = el("text", { class: "badge", x, y, "text-anchor": "end", "data-state": status }, parent);
  text.textContent = status;
}

function draw(svg, graph, view) {
  const { boxes, lines } = graph.layout;
  const nodes = new Map(graph.nodes.map((n) => [n.id, n]));
  const placed = new Map(boxes.map((b) => [b.key, b]));
  svg.replaceChildren();
  el("title", { id: "topology-title" }, svg).textContent = "Network topology";
  const count = (kind, what) => `${graph.nodes.filter((n) => n.kind === kind).length} ${what}`;
  const floating = graph.links.filter((l) => l.kind === "floatingip").length;
  el("desc", { id: "topology-desc" }, svg).textContent = [
    count("external", "external networks"), count("router", "routers"), count("network", "networks"),
    count("instance", "instances"), count("loadbalancer", "load balancers"), `${floating} floating IPs`,
  ].join(", ") + `, with ${graph.links.length} links; the links are listed below the drawing.`;
  const root = el("g", { class: "viewport" }, svg);
  const labels = [];
  for (const line of lines) {
    const p = placed.get(line.from), q = placed.get(line.to);
    const points = curve(line, p, q);
    el("path", {
      class: `edge e-${line.kind}`, "data-from": p.id, "data-to": q.id, "data-kind": line.kind,
      d: `M${points[0]} C${points[1]} ${points[2]} ${points[3]}`,
    }, root);
    if (line.label && line.kind in LABELLED) {
      const [x, y] = at(points, LABELLED[line.kind]);
      labels.push({ line, x, y });
    }
  }
  for (const b of boxes) {
    const n = nodes.get(b.id);
    const bar = n.kind === "network" || n.kind === "external";
    const link = el("a", { href: n.url, class: `node k-${n.kind}`, "data-id": n.id, "data-kind": n.kind, "data-key": b.key }, root);
    const fips = n.floating_ips.length ? ` — floating IP ${n.floating_ips.join(", ")}` : "";
    el("title", {}, link).textContent =
      `${NAMES[n.kind] || n.kind} ${n.label}${n.detail ? " — " + n.detail : ""}${fips}${n.status ? " (" + n.status + ")" : ""}`;
    el("rect", { x: b.x, y: b.y, width: b.w, height: b.h, rx: n.kind === "router" ? 18 : 5,
                 fill: COLORS[n.kind], stroke: STROKES[n.kind] }, link);
    if (bar) {
      const text = el("text", { x: b.x + 8, y: b.y + 15, "font-weight": "600" }, link);
      text.textContent = cut(n.label, Math.max(8, Math.floor(b.w / 8) - 10));
      el("text", { class: "detail", x: b.x + 8, y: b.y + 28 }, link).textContent = cut(n.detail, Math.floor(b.w / 6.5));
      if (n.status) badge(link, n.status, b.x + b.w - 6, b.y + 15);
      continue;
    }
    el("text", { x: b.x + 8, y: b.y + 16, "font-weight": "600" }, link).textContent = cut(n.label, 15);
    el("text", { class: "detail", x: b.x + 8, y: b.y + 32 }, link).textContent = cut(n.detail, 26);
    if (n.status) badge(link, n.status, b.x + b.w - 6, b.y + 16);
    if (n.floating_ips.length) {  // the first on the box; all of them in its title
      const [first, ...more] = n.floating_ips;
      const fip = el("g", { class: "fip", "data-address": first }, link);
      el("rect", { x: b.x + 6, y: b.y + 40, width: b.w - 12, height: 18, rx: 9 }, fip);
      el("text", { x: b.x + 14, y: b.y + 53 }, fip).textContent =
        `FIP ${first}${more.length ? ` +${more.length}` : ""}`;
    }
  }
  // Labels last, on a white ground, so no line or box hides them.
  for (const { line, x, y } of labels) {
    const group = el("g", { class: `edge-label l-${line.kind}` }, root);
    const text = el("text", { x, y: y + 4, "text-anchor": "middle" }, group);
    text.textContent = line.label;
    const size = text.getBBox();
    group.insertBefore(el("rect", { x: size.x - 3, y: size.y - 1, width: size.width + 6, height: size.height + 2, rx: 3 }), text);
  }
  if (!view.scale) {  // first drawing: fit everything
    const box = svg.getBoundingClientRect(), bounds = root.getBBox();
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
    a.textContent = `${NAMES[n.kind] || n.kind} ${n.label}`;
    return a;
  };
  list.replaceChildren(...graph.links.map((link) => {
    const li = document.createElement("li");
    li.dataset.kind = link.kind;
    li.append(...link.text.split(/(\{[ab]\})/).filter(Boolean).map((part) =>
      part === "{a}" ? named(nodes.get(link.from)) : part === "{b}" ? named(nodes.get(link.to)) : part));
    return li;
  }));
  if (!graph.links.length) list.append(Object.assign(document.createElement("li"), { textContent: "No links." }));
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
  const source = () => {
    const box = svg.getBoundingClientRect();
    return `${holder.dataset.source}?aspect=${(box.width / Math.max(box.height, 1)).toFixed(2)}`;
  };
  const poll = async () => {
    try {
      const response = await fetch(source());
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
  // A window that changes shape gets the drawing laid out for it and fitted again.
  window.addEventListener("resize", () => { view.scale = 0; last = ""; });
  poll();
}
