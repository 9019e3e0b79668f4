// Feedback for every action, live tables and the how-it-works sections.
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

// A table that scrolls sideways (wide, on a phone) is a stop for the keyboard, which scrolls it;
// one that fits is not.
function reachScrolling(root = document) {
  for (const region of root.querySelectorAll("table")) {
    if (region.scrollWidth > region.clientWidth) region.tabIndex = 0;
    else if (region.tabIndex === 0) region.removeAttribute("tabindex");
  }
}
reachScrolling();
window.addEventListener("resize", () => reachScrolling());

// pending -> done: a submitted form's button says so until the next page arrives.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.confirm && !confirm(form.dataset.confirm)) { event.preventDefault(); return; }
  if (form.hasAttribute("data-probe")) return;
  const button = event.submitter || form.querySelector("button");
  if (button) { button.disabled = true; button.dataset.label = button.textContent; button.textContent = "Working…"; }
});
window.addEventListener("pageshow", () => {
  document.querySelectorAll("button[data-label]").forEach((b) => {
    b.disabled = false; b.textContent = b.dataset.label;
  });
  document.querySelectorAll("table[data-table]").forEach(countSelected);
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
        if (next && next.innerHTML !== region.innerHTML) {
          const checked = selected(region);
          region.innerHTML = next.innerHTML;
          changed = true;
          if (region.matches("table[data-table]")) {
            region.querySelectorAll("input[name=id]").forEach((box) => { box.checked = checked.has(box.value); });
            narrow(region);
          }
        }
      }
    }
  } catch {
    // offline for a moment: try again later
  }
  liveDelay = changed ? FIRST_DELAY : Math.min(liveDelay * 1.5, LONGEST_DELAY);
  liveTimer = changing() ? setTimeout(refreshLive, liveDelay) : null;
}

// Tables: the filter box narrows the shown rows as one types (Enter asks the API across all
// pages); "Delete selected" counts the checked rows.
const selected = (table) => new Set([...table.querySelectorAll("input[name=id]:checked")].map((box) => box.value));

function narrow(table) {
  const box = document.querySelector(`input[data-filter="${table.id}"]`);
  const text = box ? box.value.trim().toLowerCase() : "";
  for (const row of table.tBodies[0].rows) {
    row.hidden = Boolean(text) && row.cells.length > 1 && !row.textContent.toLowerCase().includes(text);
  }
}

function countSelected(table) {
  const button = document.querySelector(`#${table.id}-selected [data-delete-selected]`);
  if (!button) return;
  const count = selected(table).size;
  button.disabled = count === 0;
  button.textContent = count ? `Delete selected (${count})` : "Delete selected";
}

document.addEventListener("input", (event) => {
  const table = event.target.dataset.filter && document.getElementById(event.target.dataset.filter);
  if (table) narrow(table);
});
document.addEventListener("change", (event) => {
  const table = event.target.closest("table[data-table]");
  if (!table) return;
  if (event.target.hasAttribute("data-select-all")) {
    for (const row of table.tBodies[0].rows) {
      const box = row.querySelector("input[name=id]");
      if (box && !row.hidden) box.checked = event.target.checked;
    }
  }
  countSelected(table);
});
document.querySelectorAll("table[data-table]").forEach(countSelected);

async function postJson(url, body) {
  const response = await fetch(url, { method: "POST", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() } });
  const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  return response.ok ? data : { error: data.error || `HTTP ${response.status}` };
}

// How it works: loaded after the page, since reading the kernel takes a moment.
async function loadHow(section) {
  const response = await fetch(section.dataset.how, { headers: { "X-Live-Refresh": "1" } });
  section.innerHTML = await response.text();
  reachScrolling(section);
}
document.querySelectorAll("[data-how]").forEach(loadHow);
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-how-refresh]");
  if (button) loadHow(button.closest("[data-how]"));
});
