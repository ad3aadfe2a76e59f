// The explorer's graph: Graphviz's SVG inline, with click / double-click, pan / zoom, search and
// a legend. Streamlit calls this function again whenever the data changes; the SVG is replaced
// only when the drawing itself changes, so the view (viewBox) survives other reruns.
// Every string from Python is put into the page as text (textContent, attribute values,
// comparisons), never as markup; the SVG itself is Graphviz's output from the model's own names.

const VIEWS = new Map(); // instance + drawing -> viewBox, so a remount keeps the view

function titleOf(g) {
  const t = g.querySelector(":scope > title");
  return t ? t.textContent : "";
}

function nameOf(g) {
  const title = titleOf(g);
  return g.classList.contains("cluster") ? title.replace(/^cluster_/, "") : title;
}

function parseBox(svg) {
  const [x, y, w, h] = (svg.getAttribute("viewBox") || "0 0 100 100").split(/[ ,]+/).map(Number);
  return { x, y, w, h };
}

function setBox(state, box) {
  state.box = box;
  state.svg.setAttribute("viewBox", `${box.x} ${box.y} ${box.w} ${box.h}`);
  VIEWS.set(state.viewKey, box);
}

function viewport(state) {
  const r = state.canvas.getBoundingClientRect();
  return { w: Math.max(r.width, 1), h: Math.max(r.height, 1) };
}

// the whole drawing, or (too small to read) a readable piece of it around `centre`
function fitBox(state, readable, centre) {
  const full = state.full, vp = viewport(state);
  const k = Math.min(vp.w / full.w, vp.h / full.h); // pixels per SVG unit when all of it shows
  const s = readable ? Math.max(k, Math.min(1, state.minScale)) : k;
  const w = vp.w / s, h = vp.h / s;
  const cx = centre ? centre.x : full.x + full.w / 2;
  const cy = centre ? centre.y : (s > k ? full.y + h / 2 : full.y + full.h / 2);
  return { x: cx - w / 2, y: cy - h / 2, w, h };
}

function centreOf(state, name) {
  for (const g of state.svg.querySelectorAll("g.node, g.cluster")) {
    if (nameOf(g) === name) { // the box in the SVG's viewBox units (dot translates its graph)
      const b = g.getBBox(), m = state.svg.getScreenCTM().inverse().multiply(g.getScreenCTM());
      const p = state.svg.createSVGPoint();
      p.x = b.x + b.width / 2;
      p.y = b.y + b.height / 2;
      const c = p.matrixTransform(m);
      return { x: c.x, y: c.y };
    }
  }
  return null;
}

function toSvg(state, ev) {
  const pt = state.svg.createSVGPoint();
  pt.x = ev.clientX;
  pt.y = ev.clientY;
  return pt.matrixTransform(state.svg.getScreenCTM().inverse());
}

function zoom(state, factor, at) {
  const b = state.box, p = at || { x: b.x + b.w / 2, y: b.y + b.h / 2 };
  setBox(state, { x: p.x - (p.x - b.x) / factor, y: p.y - (p.y - b.y) / factor,
                  w: b.w / factor, h: b.h / factor });
}

function paint(state) {
  const d = state.data, query = (state.search.value || "").trim().toLowerCase();
  const highlight = new Set(d.highlight || []);
  let found = 0;
  for (const g of state.svg.querySelectorAll("g.node, g.cluster")) {
    const name = nameOf(g);
    g.classList.toggle("selected", name === d.selected);
    g.classList.toggle("matched", highlight.has(name));
    const hit = query !== "" && g.classList.contains("node") &&
      (name.toLowerCase().includes(query) || g.textContent.toLowerCase().includes(query));
    g.classList.toggle("found", hit);
    if (hit) found += 1;
  }
  state.root.classList.toggle("searching", query !== "");
  const words = state.data.words || {};
  state.count.textContent = !query ? "" : (words.matches || (found === 1 ? "{n} match" : "{n} matches"))
    .replace("{n}", String(found));
  state.root.dataset.matches = String(found);
}

function drawLegend(state) {
  const legend = state.legend, items = state.data.legend || [];
  legend.replaceChildren();
  legend.hidden = items.length === 0;
  if (!items.length) return;
  const title = document.createElement("span");
  title.className = "legend-title";
  title.textContent = state.data.legend_title || "";
  legend.append(title);
  for (const [colour, text] of items) {
    const item = document.createElement("span");
    item.className = "legend-item";
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = /^#[0-9a-fA-F]{6}$/.test(colour) ? colour : "transparent";
    item.append(swatch, document.createTextNode(text));
    legend.append(item);
  }
}

function draw(state) {
  const d = state.data, old = state.box;
  const at = d.svg.indexOf("<svg");
  state.canvas.innerHTML = at >= 0 ? d.svg.slice(at) : "";
  const svg = state.canvas.querySelector("svg");
  state.svg = svg;
  state.drawing = d.drawing;
  if (!svg) return;
  svg.removeAttribute("width");
  svg.removeAttribute("height");
  svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
  state.full = parseBox(svg);
  state.viewKey = `${d.instance}|${d.drawing}`;
  const saved = VIEWS.get(state.viewKey);
  const focus = d.focus ? centreOf(state, d.focus) : null;
  if (saved) {
    setBox(state, saved);
  } else if (old && focus) { // an expand / collapse: same zoom, centred on what changed
    const vp = viewport(state), s = Math.max(vp.w / old.w, state.minScale);
    setBox(state, { x: focus.x - vp.w / s / 2, y: focus.y - vp.h / s / 2, w: vp.w / s, h: vp.h / s });
  } else {
    setBox(state, fitBox(state, d.fit !== "all", d.selected ? centreOf(state, d.selected) : null));
  }
  // Graphviz's <title> names each node, and the browser shows an SVG <title> as a native
  // tooltip that stays where it was while the page scrolls. The same text in an XHTML <title>
  // (which draws nothing) keeps the name where selectors find it; our own tip replaces it.
  for (const t of [...svg.querySelectorAll("title")]) {
    const plain = document.createElementNS("http://www.w3.org/1999/xhtml", "title");
    plain.textContent = t.textContent;
    t.replaceWith(plain);
  }
  for (const g of svg.querySelectorAll("g.node, g.cluster")) {
    g.addEventListener("pointerenter", (ev) => showTip(state, g, ev));
    g.addEventListener("pointerleave", () => hideTip(state));
    g.addEventListener("click", (ev) => {
      if (state.dragged) return;
      ev.stopPropagation();
      const name = nameOf(g);
      state.data.selected = name;
      paint(state);
      state.send("click", name);
    });
    g.addEventListener("dblclick", (ev) => {
      ev.stopPropagation();
      state.send("toggle", nameOf(g));
    });
  }
  state.root.dataset.nodes = String(svg.querySelectorAll("g.node").length);
}

// Our own tooltip: inside the graph's box (it scrolls with the page), gone on scroll or zoom.
function showTip(state, g, ev) {
  if (state.drag || !g.classList.contains("node")) return;
  const tip = state.tip, box = state.root.getBoundingClientRect();
  tip.textContent = `${nameOf(g)} · click: select · double-click: open / close`;
  tip.hidden = false;
  tip.style.left = `${Math.max(0, ev.clientX - box.left + 12)}px`;
  tip.style.top = `${Math.max(0, ev.clientY - box.top + 16)}px`;
}

function hideTip(state) {
  if (state.tip) state.tip.hidden = true;
}

function setup(root, state) {
  state.tip = root.querySelector("[data-explorer-tip]");
  document.addEventListener("scroll", () => hideTip(state), { capture: true, passive: true });
  root.addEventListener("pointerleave", () => hideTip(state));
  state.root = root;
  state.canvas = root.querySelector(".canvas");
  state.search = root.querySelector("input.search");
  state.count = root.querySelector(".count");
  state.legend = root.querySelector("[data-explorer-legend]");
  state.search.addEventListener("input", () => paint(state));
  root.querySelector("button.fit").addEventListener("click", () => setBox(state, fitBox(state, false)));
  root.querySelector("button.zoom-in").addEventListener("click", () => zoom(state, 1.25));
  root.querySelector("button.zoom-out").addEventListener("click", () => zoom(state, 0.8));
  root.querySelector("button.expand-all").addEventListener("click", () => state.send("command", "expand_all"));
  root.querySelector("button.collapse-all").addEventListener("click", () => state.send("command", "collapse_all"));
  const canvas = state.canvas;
  canvas.addEventListener("wheel", (ev) => {
    if (!state.svg) return;
    ev.preventDefault();
    hideTip(state);
    zoom(state, ev.deltaY < 0 ? 1.15 : 1 / 1.15, toSvg(state, ev));
  }, { passive: false });
  canvas.addEventListener("pointerdown", (ev) => {
    if (!state.svg || ev.button !== 0) return;
    state.drag = { x: ev.clientX, y: ev.clientY, p: toSvg(state, ev) };
    state.dragged = false;
  });
  canvas.addEventListener("pointermove", (ev) => {
    const drag = state.drag;
    if (!drag) return;
    if (!state.dragged && Math.hypot(ev.clientX - drag.x, ev.clientY - drag.y) < 4) return;
    if (!state.dragged) canvas.setPointerCapture(ev.pointerId);
    state.dragged = true;
    const p = toSvg(state, ev), b = state.box;
    setBox(state, { ...b, x: b.x - (p.x - drag.p.x), y: b.y - (p.y - drag.p.y) });
  });
  const end = () => {
    state.drag = null;
    setTimeout(() => { state.dragged = false; }, 0); // the click that ends a drag selects nothing
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  const root = parentElement.querySelector("[data-explorer-graph]");
  if (!root || !data) return;
  let state = root.__explorerGraph;
  if (!state) {
    state = root.__explorerGraph = { minScale: 0.9 };
    setup(root, state);
  }
  state.send = setTriggerValue; // listeners always use the latest
  state.data = { ...data };
  // the toolbar in the page's language: [selector, attribute ("text": the content), words]
  for (const [selector, attribute, text] of data.toolbar || []) {
    const element = root.querySelector(selector);
    if (!element) continue;
    if (attribute === "text") element.textContent = text;
    else element.setAttribute(attribute, text);
  }
  state.canvas.style.height = `${Number(data.height) || 600}px`;
  if (state.drawing !== data.drawing) draw(state);
  if (state.svg) paint(state);
  drawLegend(state);
  root.dataset.selected = data.selected || "";
}
