// The instance console: a shell inside the instance on a terminal (xterm.js), over the
// dashboard's WebSocket. Binary frames carry bytes, their first byte naming the stream (0 the
// keyboard, 1 the terminal's output); text frames carry JSON: a resize going out, the shell's
// exit status (or why it could not start) coming in.
"use strict";

const NOT_RUNNING_YET = 409, RETRY_MS = 2000;

for (const panel of document.querySelectorAll("[data-terminal]")) {
  const term = new Terminal({ cursorBlink: true, fontSize: 14, scrollback: 5000 });
  const fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(panel.querySelector(".screen"));
  fit.fit();
  const encoder = new TextEncoder();
  let socket = null, shownWaiting = false, retry = null;

  function connect() {
    const url = new URL(panel.dataset.terminal, location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    url.search = new URLSearchParams({ rows: term.rows, cols: term.cols });
    let ended = "the connection was lost", waiting = false;
    socket = new WebSocket(url);
    socket.binaryType = "arraybuffer";
    socket.onmessage = (event) => {
      if (typeof event.data !== "string") { term.write(new Uint8Array(event.data, 1)); return; }
      const control = JSON.parse(event.data);
      if (control.error) { ended = control.error; waiting = control.status === NOT_RUNNING_YET; }
      else if (control.idle) ended = "the shell was ended: nothing was typed for a long time";
      else if ("exit_status" in control) ended = `the shell exited with status ${control.exit_status}`;
    };
    socket.onclose = () => {
      socket = null;
      if (waiting) {  // the instance is starting: its shell comes once it runs
        if (!shownWaiting) term.write(`\x1b[33m[${ended} The console opens once it runs.]\x1b[0m\r\n`);
        shownWaiting = true;
        retry = setTimeout(connect, RETRY_MS);
        return;
      }
      term.write(`\r\n\x1b[33m[${ended}; press Enter for a new shell]\x1b[0m\r\n`);
    };
  }

  term.onData((data) => {
    if (socket === null) { if (data === "\r") { clearTimeout(retry); connect(); } return; }
    if (socket.readyState !== WebSocket.OPEN) return;
    const bytes = encoder.encode(data), frame = new Uint8Array(bytes.length + 1);
    frame.set(bytes, 1);  // stream 0: the keyboard
    socket.send(frame);
  });
  term.onResize(({ rows, cols }) => {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ resize: [rows, cols] }));
  });
  new ResizeObserver(() => fit.fit()).observe(panel.querySelector(".screen"));
  connect();
}
