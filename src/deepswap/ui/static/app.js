// deepswap ui: the few things the server cannot render — a job followed live, the loss chart,
// marking faces for removal, the mask editor. Everything else is server-rendered HTML sent and swapped by htmx.
"use strict";

// Form answers that are errors (4xx/5xx) go to the message area, as text unless they are HTML.
document.addEventListener("htmx:beforeSwap", (event) => {
  const xhr = event.detail.xhr;
  if (xhr.status < 400) return;
  event.detail.shouldSwap = true;
  event.detail.isError = false;
  event.detail.target = document.getElementById("message");
  if (!(xhr.getResponseHeader("content-type") || "").includes("text/html")) {
    const line = document.createElement("p");
    line.className = "error";
    line.textContent = xhr.responseText || `request failed (${xhr.status})`;
    event.detail.serverResponse = line.outerHTML;
  }
});
document.addEventListener("htmx:beforeRequest", () => {
  const message = document.getElementById("message");
  if (message) message.innerHTML = "";
});
document.addEventListener("htmx:sendError", () => {
  document.getElementById("message").innerHTML = '<p class="error">the server does not answer; is `deepswap ui` still running?</p>';
});

// The job panel follows the workspace's running job; when the job ends the page reloads to show its results.
// Only the panel's body is replaced: the Stop button stays the same element, so a click on it is never lost.
function followJob(panel) {
  const events = new EventSource(panel.dataset.events);
  events.addEventListener("job", (event) => {
    const job = JSON.parse(event.data);
    const fresh = document.createElement("template");
    fresh.innerHTML = job.html;
    for (const part of [".badge", ".elapsed", ".job-body"]) {
      panel.querySelector(part).replaceWith(fresh.content.querySelector(part));
    }
    if (!fresh.content.querySelector(".stop")) panel.querySelector(".stop")?.remove();
    document.dispatchEvent(new CustomEvent("deepswap:job", { detail: job }));
    if (!job.active) {
      events.close();
      setTimeout(() => location.reload(), 300);
    }
  });
}

// The loss chart: the saved history, then the live points of a running training job.
function lossChart(svg) {
  const history = JSON.parse(document.getElementById("loss-history").textContent);
  let live = [];
  const draw = () => {
    const first = live.length ? live[0][0] : Infinity;
    const points = history.filter((p) => p[0] < first).concat(live);
    svg.innerHTML = "";
    const ns = "http://www.w3.org/2000/svg";
    const add = (tag, attributes, text) => {
      const element = document.createElementNS(ns, tag);
      for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
      if (text !== undefined) element.textContent = text;
      svg.appendChild(element);
    };
    const [left, right, top, bottom] = [56, 590, 12, 270];
    add("rect", { x: left, y: top, width: right - left, height: bottom - top, class: "frame" });
    if (points.length < 2) {
      add("text", { x: 300, y: 145, "text-anchor": "middle", class: "muted" }, "no training yet");
      return;
    }
    const xs = points.map((p) => p[0]);
    const ys = points.flatMap((p) => [p[1], p[2]]).filter(Number.isFinite);
    const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    const [y0, y1] = [Math.min(...ys) * 0.95, Math.max(...ys) * 1.02];
    const x = (v) => left + ((v - x0) / (x1 - x0 || 1)) * (right - left);
    const y = (v) => bottom - ((v - y0) / (y1 - y0 || 1)) * (bottom - top);
    for (let i = 0; i <= 4; i++) {
      const value = y0 + ((y1 - y0) * i) / 4;
      add("line", { x1: left, x2: right, y1: y(value), y2: y(value), class: "grid" });
      add("text", { x: left - 6, y: y(value) + 4, "text-anchor": "end" }, value.toFixed(3));
    }
    add("text", { x: left, y: 292 }, `iteration ${Math.round(x0)}`);
    add("text", { x: right, y: 292, "text-anchor": "end" }, `${Math.round(x1)}`);
    for (const [column, name] of [[1, "a"], [2, "b"]]) {
      const line = points.filter((p) => Number.isFinite(p[column])).map((p) => `${x(p[0]).toFixed(1)},${y(p[column]).toFixed(1)}`);
      add("polyline", { points: line.join(" "), class: `loss ${name}` });
    }
    svg.dataset.points = points.length;
  };
  document.addEventListener("deepswap:job", (event) => {
    const job = event.detail;
    if (job.kind !== "train") return;
    live = job.reset ? job.loss : live.concat(job.loss);
    draw();
  });
  draw();
}

// The training preview refreshes when the job writes a new one.
function refreshingPreview(image) {
  document.addEventListener("deepswap:job", (event) => {
    const url = event.detail.files[image.dataset.path];
    if (url && image.getAttribute("src") !== url) {
      image.src = url;
      image.hidden = false;
      document.getElementById("no-preview")?.remove();
    }
  });
}

// Faces: click to mark one, drag a rectangle to mark several; undo steps back until applied.
function faceSelection(grid) {
  const form = document.getElementById("remove-form");
  const field = document.getElementById("marked-faces");
  const count = document.getElementById("marked-count");
  const buttons = ["undo", "clear", "apply"].map((id) => document.getElementById(id));
  let marked = new Set();
  const past = [];
  const show = () => {
    for (const tile of grid.querySelectorAll(".tile")) tile.classList.toggle("marked", marked.has(tile.dataset.id));
    field.value = [...marked].join(",");
    count.textContent = `${marked.size} marked`;
    buttons[0].disabled = past.length === 0;
    buttons[1].disabled = buttons[2].disabled = marked.size === 0;
    buttons[2].textContent = marked.size ? `Remove ${marked.size} face${marked.size > 1 ? "s" : ""}` : "Remove marked faces";
  };
  const change = (next) => {
    past.push(marked);
    marked = next;
    show();
  };
  let start = null;
  let band = null;
  grid.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || event.target.closest("a")) return;  // the mask editor's link opens it
    start = { x: event.clientX, y: event.clientY, tile: event.target.closest(".tile") };
  });
  window.addEventListener("pointermove", (event) => {
    if (!start) return;
    if (!band && Math.hypot(event.clientX - start.x, event.clientY - start.y) < 6) return;
    if (!band) {
      band = document.createElement("div");
      band.className = "band";
      document.body.appendChild(band);
    }
    const [l, t] = [Math.min(start.x, event.clientX), Math.min(start.y, event.clientY)];
    Object.assign(band.style, { left: `${l}px`, top: `${t}px`, width: `${Math.abs(event.clientX - start.x)}px`,
      height: `${Math.abs(event.clientY - start.y)}px` });
  });
  window.addEventListener("pointerup", () => {
    if (!start) return;
    if (band) {
      const area = band.getBoundingClientRect();
      const hit = [...grid.querySelectorAll(".tile")].filter((tile) => {
        const box = tile.getBoundingClientRect();
        return box.right > area.left && box.left < area.right && box.bottom > area.top && box.top < area.bottom;
      });
      band.remove();
      band = null;
      if (hit.length) change(new Set([...marked, ...hit.map((tile) => tile.dataset.id)]));
    } else if (start.tile) {
      const next = new Set(marked);
      next.has(start.tile.dataset.id) ? next.delete(start.tile.dataset.id) : next.add(start.tile.dataset.id);
      change(next);
    }
    start = null;
  });
  buttons[0].addEventListener("click", () => {
    marked = past.pop() || new Set();
    show();
  });
  buttons[1].addEventListener("click", () => change(new Set()));
  show();
}

// The mask editor: the crop with a mask over it (green: face, dark: not face), painted with a round
// brush at the crop's own resolution; undo, revert, start from the learned mask, save as a PNG.
function maskEditor(editor) {
  const size = Number(editor.dataset.size);
  const canvas = document.getElementById("mask-canvas");
  const view = canvas.getContext("2d");
  const mask = Object.assign(document.createElement("canvas"), { width: size, height: size });
  const paint = mask.getContext("2d", { willReadFrequently: true });
  const learned = Object.assign(document.createElement("canvas"), { width: size, height: size });
  const crop = new Image();
  const brushSize = document.getElementById("brush-size");
  const undoButton = document.getElementById("mask-undo");
  const state = document.getElementById("mask-state");
  const past = [];
  const checked = (name) => document.querySelector(`input[name=${name}]:checked`).value;
  const choose = (name, value) => {
    const input = document.querySelector(`input[name=${name}][value=${value}]`);
    if (!input.disabled) input.checked = true;
  };

  const draw = () => {
    view.drawImage(crop, 0, 0, size, size);
    const shown = checked("view");
    if (shown === "none") return;
    const pixels = view.getImageData(0, 0, size, size);
    const source = (shown === "learned" ? learned.getContext("2d") : paint).getImageData(0, 0, size, size).data;
    const data = pixels.data;
    for (let i = 0; i < data.length; i += 4) {
      const face = source[i] / 255;
      data[i] = data[i] * (0.3 + 0.4 * face);
      data[i + 1] = data[i + 1] * (0.3 + 0.4 * face) + 110 * face;
      data[i + 2] = data[i + 2] * (0.3 + 0.4 * face) + 30 * face;
    }
    view.putImageData(pixels, 0, 0);
  };
  const load = (url, into) => new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => {
      const context = into.getContext("2d");
      context.fillStyle = "#000";
      context.fillRect(0, 0, size, size);
      context.drawImage(image, 0, 0, size, size);
      resolve();
    };
    image.onerror = () => reject(new Error(`could not load ${url}`));
    image.src = url;
  });
  const remember = () => {
    past.push(paint.getImageData(0, 0, size, size));
    if (past.length > 50) past.shift();
    undoButton.disabled = false;
  };
  const undo = () => {
    if (!past.length) return;
    paint.putImageData(past.pop(), 0, 0);
    undoButton.disabled = past.length === 0;
    draw();
  };
  const say = (text, error = false) => {
    state.textContent = text;
    state.className = error ? "error" : "muted";
  };

  // Painting: a stroke from the last point to this one, so fast moves leave no gaps.
  let last = null;
  const point = (event) => {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * size / box.width, (event.clientY - box.top) * size / box.height];
  };
  const stroke = (to) => {
    paint.strokeStyle = paint.fillStyle = checked("brush") === "add" ? "#fff" : "#000";
    paint.lineWidth = Number(brushSize.value);
    paint.lineCap = "round";
    paint.beginPath();
    paint.moveTo(...(last || to));
    paint.lineTo(...to);
    paint.stroke();
    last = to;
    draw();
  };
  canvas.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    canvas.setPointerCapture(event.pointerId);
    remember();
    choose("view", "mask");
    last = null;
    stroke(point(event));
    say("Not saved yet.");
  });
  canvas.addEventListener("pointermove", (event) => { if (last) stroke(point(event)); });
  for (const type of ["pointerup", "pointercancel"]) canvas.addEventListener(type, () => { last = null; });

  const save = async (then) => {
    const blob = await new Promise((resolve) => mask.toBlob(resolve, "image/png"));
    const form = new FormData();
    form.append("person", editor.dataset.person);
    form.append("face", editor.dataset.face);
    form.append("mask", blob, "mask.png");
    const headers = JSON.parse(document.body.getAttribute("hx-headers"));
    say("Saving…");
    try {
      const answer = await fetch(editor.dataset.save, { method: "POST", body: form, headers });
      if (!answer.ok) {
        const text = new DOMParser().parseFromString(await answer.text(), "text/html").body.textContent;
        say(text.trim() || `not saved (${answer.status})`, true);
        return;
      }
      say(`Saved: ${answer.headers.get("X-Corrected-Faces")} face(s) of this person corrected by hand.`);
      if (then) location.href = then;
    } catch (error) {
      say("the server does not answer; is `deepswap ui` still running?", true);
    }
  };

  brushSize.addEventListener("input", draw);
  for (const input of document.querySelectorAll("input[name=view]")) input.addEventListener("change", draw);
  undoButton.addEventListener("click", undo);
  document.getElementById("mask-revert").addEventListener("click", () => {
    remember();
    load(editor.dataset.mask, mask).then(draw);
  });
  document.getElementById("mask-from-learned").addEventListener("click", () => {
    remember();
    paint.drawImage(learned, 0, 0);
    choose("view", "mask");
    draw();
  });
  document.getElementById("mask-save").addEventListener("click", () => save());
  document.getElementById("mask-save-next")?.addEventListener("click", () => save(document.getElementById("mask-next").href));
  document.addEventListener("keydown", (event) => {
    if (event.target.matches("input[type=number], input:not([type]), textarea")) return;
    const key = event.key.toLowerCase();
    const command = event.ctrlKey || event.metaKey;
    if (command && key === "z") undo();
    else if (command && key === "s") save();
    else if (command || event.altKey) return;
    else if (key === "a") choose("brush", "add");
    else if (key === "e") choose("brush", "erase");
    else if (key === "l") choose("view", checked("view") === "learned" ? "mask" : "learned");
    else if (key === "[" || key === "]") brushSize.value = Number(brushSize.value) + (key === "]" ? 2 : -2);
    else return;
    event.preventDefault();
    draw();
  });

  crop.onload = () => {
    const learnedReady = editor.dataset.learned ? load(editor.dataset.learned, learned) : Promise.resolve();
    Promise.all([load(editor.dataset.mask, mask), learnedReady]).then(() => {
      draw();
      editor.dataset.ready = "1";
    }, (error) => say(error.message, true));
  };
  crop.src = editor.dataset.crop;
}

// The verify drop zone shows when a file is over it.
function dropZone(zone) {
  for (const [type, on] of [["dragenter", true], ["dragover", true], ["dragleave", false], ["drop", false]]) {
    zone.addEventListener(type, () => zone.classList.toggle("over", on));
  }
}

// Train: the amount means nothing when training runs until stopped.
function trainingBudget(budget) {
  const amount = document.querySelector("input[name=amount]");
  const sync = () => { amount.disabled = !budget.value; };
  budget.addEventListener("change", sync);
  sync();
}

document.addEventListener("DOMContentLoaded", () => {
  const panel = document.querySelector("#job[data-events]");
  if (panel) followJob(panel);
  const chart = document.getElementById("loss-chart");
  if (chart) lossChart(chart);
  const preview = document.getElementById("preview");
  if (preview) refreshingPreview(preview);
  const grid = document.getElementById("face-grid");
  if (grid) faceSelection(grid);
  const editor = document.getElementById("mask-editor");
  if (editor) maskEditor(editor);
  const zone = document.getElementById("drop-zone");
  if (zone) dropZone(zone);
  const budget = document.querySelector("select[name=budget]");
  if (budget) trainingBudget(budget);
});
