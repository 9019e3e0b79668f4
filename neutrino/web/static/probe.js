// Check from outside: probe a floating IP, say why it is not answered, and offer the rule that
// lets it in (neutrino.web.probes).
"use strict";

function showProbe(form, answer) {
  const box = form.querySelector(".result");
  box.replaceChildren();
  const line = (text, cls) => {
    const p = document.createElement("p"); p.textContent = text; if (cls) p.className = cls;
    box.append(p); return p;
  };
  if (answer.error) { line(answer.error, "error"); return; }
  const result = answer.probe;
  const took = result.elapsed_ms != null ? ` in ${result.elapsed_ms} ms` : "";
  if (result.reachable) {
    const said = result.http_status ? `HTTP ${result.http_status}` : "answered";
    line(`Reachable: ${said}${took}.`, "reachable");
    if (result.first_bytes) { const pre = document.createElement("pre"); pre.textContent = result.first_bytes; box.append(pre); }
    if (result.why) line(`But ${result.why}.`, "error");
  } else {
    line(`Not reachable: ${result.why || result.error || "no answer"}.`, "error");
  }
  line(`Sent: ${result.sent}`, "muted");
  const suggested = result.suggested_rule;
  if (suggested) {
    const button = document.createElement("button");
    button.type = "button"; button.textContent = suggested.label; button.dataset.allowRule = "";
    button.addEventListener("click", async () => {
      button.disabled = true;
      const added = await postJson(form.dataset.allow, suggested.security_group_rule);
      if (added.error) { line(added.error, "error"); button.disabled = false; return; }
      document.getElementById("outside-hint")?.remove();
      await runProbe(form);
      box.prepend(Object.assign(document.createElement("p"), { textContent: `Added the rule: ${suggested.label}.` }));
    });
    box.append(button);
  }
}

async function runProbe(form) {
  const button = form.querySelector("button:not([data-allow-rule])");
  button.disabled = true;
  form.querySelector(".result").replaceChildren(Object.assign(document.createElement("p"), { textContent: "checking…" }));
  showProbe(form, await postJson(form.action, Object.fromEntries(new FormData(form))));
  button.disabled = false;
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.hasAttribute("data-probe")) return;
  event.preventDefault();
  runProbe(form);
});
