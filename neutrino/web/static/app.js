// Feedback for every action, live tables, the console panel and the packet-trace form.
"use strict";

const csrf = () => document.body.dataset.csrf;

// The menu button shows and hides the sections on a narrow screen.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button.menu");
  if (!button) return;
  const open = button.getAttribute("aria-expanded") !== "true";
  button.setAttribute("aria-expanded", String(open));
  document.getElementById(button.getAttribute("aria-controls")).classList.toggle("open", open);
});

// pending -> done: a submitted form's button says so until the next page arrives.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.confirm && !confirm(form.dataset.confirm)) { event.preventDefault(); return; }
  if (form.closest("[data-exec]") || form.hasAttribute("data-trace") || form.hasAttribute("data-probe")) return;
  const button = event.submitter || form.querySelector("button");
  if (button) { button.disabled = true; button.dataset.label = button.textContent; button.textContent = "Working…"; }
});
window.addEventListener("pageshow", () => {
  document.querySelectorAll("button[data-label]").forEach((b) => {
    b.disabled = false; b.textContent = b.dataset.label;
  });
  watchLive();
});

// Live statuses: the regions marked data-live (tables, a page's status) are fetched again and
// swapped in while a status badge in them (data-state) is still changing: at once after an
// action's page loads, then less often while nothing changes, and no more once all are settled.
const CHANGING = /^(BUILD|DOWN|PENDING_\w+)$/;
const FIRST_DELAY = 1000, LONGEST_DELAY = 10000;
let liveDelay = FIRST_DELAY, liveTimer = null;
const liveRegions = () => [...document.querySelectorAll("[data-live][id]")];
const changing = () => liveRegions().some((region) =>
  [...region.querySelectorAll("[data-state]")].some((badge) => CHANGING.test(badge.dataset.state)));

function watchLive() {
  clearTimeout(liveTimer);
  liveDelay = FIRST_DELAY;
  liveTimer = changing() ? setTimeout(refreshLive, liveDelay) : null;
}

async function refreshLive() {
  let changed = false;
  try {
    const response = await fetch(location.href, { headers: { Accept: "text/html", "X-Live-Refresh": "1" } });
    if (response.ok) {
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const region of liveRegions()) {
        const next = fresh.getElementById(region.id);
        if (next && next.innerHTML !== region.innerHTML) { region.innerHTML = next.innerHTML; changed = true; }
      }
    }
  } catch {
    // offline for a moment: try again later
  }
  liveDelay = changed ? FIRST_DELAY : Math.min(liveDelay * 1.5, LONGEST_DELAY);
  liveTimer = changing() ? setTimeout(refreshLive, liveDelay) : null;
}

async function postJson(url, body) {
  const response = await fetch(url, { method: "POST", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() } });
  const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  return response.ok ? data : { error: data.error || `HTTP ${response.status}` };
}

// The console: run a command in an instance and show what it printed.
for (const panel of document.querySelectorAll("[data-exec]")) {
  const form = panel.querySelector("form"), output = panel.querySelector(".output");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const command = form.command.value, button = form.querySelector("button");
    button.disabled = true;
    output.textContent += `$ ${command}\n(running…)\n`;
    const result = await postJson(panel.dataset.exec, { command });
    output.textContent = output.textContent.replace(/\(running…\)\n$/, "");
    output.textContent += result.error ? `error: ${result.error}\n`
      : `${result.stdout}${result.stderr}[exit ${result.exit_status}]\n`;
    output.scrollTop = output.scrollHeight;
    button.disabled = false;
  });
}

// How it works: loaded after the page, since reading the kernel takes a moment.
async function loadHow(section) {
  const response = await fetch(section.dataset.how, { headers: { "X-Live-Refresh": "1" } });
  section.innerHTML = await response.text();
}
document.querySelectorAll("[data-how]").forEach(loadHow);
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-how-refresh]");
  if (button) loadHow(button.closest("[data-how]"));
});

// Packet trace: hop by hop, then the real probe that confirms it.
document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!form.hasAttribute("data-trace")) return;
  event.preventDefault();
  const hops = form.querySelector(".hops");
  const add = (text, cls) => { const li = document.createElement("li"); li.textContent = text; if (cls) li.className = cls; hops.append(li); };
  hops.replaceChildren();
  add("tracing…");
  const result = await postJson(form.action, Object.fromEntries(new FormData(form)));
  hops.replaceChildren();
  if (result.error) { add(result.error, "drop"); return; }
  for (const hop of result.hops) add(hop.text, hop.verdict === "drop" ? "drop" : "");
  if (result.nat) add(`NAT: ${result.nat}`);
  const probe = result.probe || {};
  add(`probe ${(probe.command || []).join(" ")}: ${probe.reached ? "reached" : "did not reach"} ${result.to}`,
      probe.reached ? "" : "drop");
  for (const line of probe.trace || []) add(`nft trace: ${line}`);
});
