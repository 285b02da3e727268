// The call flow from /graph drawn as an SVG (layers from the app down), with the same flow
// as a list of sentences for screen readers and small screens.

import { h } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
const BOX_W = 150;
const BOX_H = 40;
const GAP_X = 64; // between columns: room for the edge labels
const GAP_Y = 14; // between boxes of one column
const KIND_WORDS = {
  menu: "menu", announcement: "announcement", mailbox: "voicemail", sysprompt: "system messages",
  user: "person", team: "team", number: "number", sip: "SIP address", prompt: "message",
  extensions: "extensions", hangup: "hang up", missing: "missing",
};

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function shortLabel(label) {
  const plain = String(label).replace(/ \((menu|announcement|mailbox|sysprompt)\)$/, "").replace(/^(user|team|number|sip|prompt) /, "");
  return plain.length > 20 ? plain.slice(0, 19) + "…" : plain;
}

function edgeWords(label) {
  if (/^[0-9*#]$/.test(label)) return `press ${label}`;
  return label;
}

/** A sentence's middle for an edge: with opening hours, which branch it is on. */
function branchWords(edge) {
  if (edge.branch === "closed") return `when ${edge.label}`;
  if (edge.branch === "open") return `when open, ${edgeWords(edge.label)}`;
  return edgeWords(edge.label);
}

/** The schedule a graph's closed branch names ("closed (Office hours)" → "Office hours"). */
function scheduleOf(graph) {
  const closed = graph.edges.find((e) => e.branch === "closed");
  if (!closed) return null;
  const named = /^closed \((.*)\)$/.exec(closed.label);
  return named ? named[1] : "opening hours";
}

/** Layers by breadth-first distance from the root; unreachable nodes go last. */
function layers(graph) {
  const depth = new Map([[graph.root, 0]]);
  const queue = [graph.root];
  while (queue.length) {
    const id = queue.shift();
    for (const e of graph.edges) {
      if (e.source === id && !depth.has(e.target)) {
        depth.set(e.target, depth.get(id) + 1);
        queue.push(e.target);
      }
    }
  }
  const max = Math.max(0, ...depth.values());
  const rows = [];
  for (const node of graph.nodes) {
    const d = depth.has(node.id) ? depth.get(node.id) : max + 1;
    (rows[d] = rows[d] || []).push(node);
  }
  return rows.filter(Boolean);
}

/** An element showing the flow: the drawing and a list of what leads where. */
export function drawFlow(graph) {
  // Left to right: the app, then what its keys lead to, one column per step. A column of
  // boxes stays readable in the narrow panel beside the editor, however many keys are in use.
  const columns = layers(graph);
  const tallest = Math.max(1, ...columns.map((c) => c.length));
  // The closed branch of opening hours arcs over the boxes: room for it above them.
  const arcs = graph.edges.some((e) => e.branch === "closed") ? 30 : 0;
  const width = columns.length * (BOX_W + GAP_X) - GAP_X + 20;
  const height = tallest * (BOX_H + GAP_Y) - GAP_Y + 20 + 30 + arcs;
  const pos = new Map();
  columns.forEach((column, cx) => {
    const top = 10 + arcs + ((tallest - column.length) * (BOX_H + GAP_Y)) / 2;
    column.forEach((node, cy) => pos.set(node.id, { x: 10 + cx * (BOX_W + GAP_X), y: top + cy * (BOX_H + GAP_Y), node }));
  });
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-label": `Call flow of ${shortLabel(byId.get(graph.root)?.label || "this app")}`,
  });
  root.appendChild(svg("defs")).appendChild(svg("marker", {
    id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse",
  })).appendChild(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#7f8fa0" }));
  const edgeLayer = root.appendChild(svg("g"));
  const labelLayer = root.appendChild(svg("g"));
  const nodeLayer = root.appendChild(svg("g"));
  // Several edges between the same two nodes share one line with all their labels; the closed
  // branch of opening hours keeps a line of its own (dashed), so the open branch stays readable.
  const merged = new Map();
  for (const e of graph.edges) {
    const key = `${e.source}\u0000${e.target}\u0000${e.branch === "closed" ? "closed" : ""}`;
    if (!merged.has(key)) merged.set(key, { ...e, labels: [] });
    merged.get(key).labels.push(e.label);
  }
  let loops = 0;
  for (const e of merged.values()) {
    const a = pos.get(e.source);
    const b = pos.get(e.target);
    if (!a || !b) continue;
    const closed = e.branch === "closed";
    let d;
    let lx;
    let ly;
    if (closed && b !== a) {
      // Over the top, from the app's top to the target's, apart from the open branch's lines.
      const x1 = a.x + BOX_W / 2;
      const x2 = b.x + BOX_W / 2;
      const apex = Math.min(a.y, b.y) - 26;
      d = `M ${x1} ${a.y} C ${x1} ${apex}, ${x2} ${apex}, ${x2} ${b.y - 2}`;
      lx = (x1 + x2) / 2;
      ly = 0.125 * a.y + 0.75 * apex + 0.125 * b.y; // the curve's highest point
    } else if (b.x > a.x) {
      const x1 = a.x + BOX_W;
      const y1 = a.y + BOX_H / 2;
      const x2 = b.x - 2;
      const y2 = b.y + BOX_H / 2;
      const mx = (x1 + x2) / 2;
      d = `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`;
      lx = x2 - GAP_X / 2 + 4;
      ly = y2;
    } else if (b.x === a.x && b !== a) {
      // Another box of the same column (a team's member who is also on a key, the mailbox a
      // team falls back to): an arc out into the gap on the right, its label there too, clear
      // of the boxes in between.
      const x = a.x + BOX_W;
      const y1 = a.y + BOX_H / 2 + (b.y > a.y ? 6 : -6);
      const y2 = b.y + BOX_H / 2 + (b.y > a.y ? -6 : 6);
      const bulge = x + GAP_X * 0.6;
      d = `M ${x} ${y1} C ${bulge} ${y1}, ${bulge} ${y2}, ${x + 2} ${y2}`;
      lx = x + GAP_X * 0.45;
      ly = (y1 + y2) / 2;
    } else {
      // Back to an earlier column or to itself (a loop): under the boxes.
      loops += 1;
      const x1 = a.x + BOX_W / 2;
      const x2 = b.x + BOX_W / 2 + (b === a ? 20 : 0);
      const low = Math.max(a.y, b.y) + BOX_H + 8 + loops * 6;
      d = `M ${x1} ${a.y + BOX_H} C ${x1} ${low + 14}, ${x2} ${low + 14}, ${x2} ${b.y + BOX_H + 2}`;
      lx = (x1 + x2) / 2;
      ly = low + 6;
    }
    edgeLayer.appendChild(svg("path", { d, "marker-end": "url(#arrow)", class: closed ? "edge-line closed" : "edge-line" }));
    const text = e.labels.join(", ");
    const short = closed ? "closed" : text;
    const shown = short.length > 9 ? short.slice(0, 8) + "…" : short;
    const w = 8 + shown.length * 6.5;
    const g = labelLayer.appendChild(svg("g", { class: closed ? "edge closed" : "edge" }));
    g.appendChild(svg("title", {}, text));
    g.appendChild(svg("rect", { class: "label-bg", x: lx - w / 2, y: ly - 9, width: w, height: 17, rx: 4 }));
    g.appendChild(svg("text", { x: lx, y: ly + 4, "text-anchor": "middle" }, shown));
  }
  for (const { x, y, node } of pos.values()) {
    const g = nodeLayer.appendChild(svg("g", { class: `node ${node.kind}` }));
    g.appendChild(svg("title", {}, `${node.label}`));
    g.appendChild(svg("rect", { x, y, width: BOX_W, height: BOX_H, rx: 8 }));
    g.appendChild(svg("text", { x: x + BOX_W / 2, y: y + 17, "text-anchor": "middle", "font-weight": "600" }, shortLabel(node.label)));
    g.appendChild(svg("text", { x: x + BOX_W / 2, y: y + 32, "text-anchor": "middle", class: "kind", fill: "#5a6675", "font-size": "10" }, KIND_WORDS[node.kind] || node.kind));
  }
  const sentences = graph.edges.map((e) => h("li", { class: e.branch || null },
    `${byId.get(e.source)?.label || e.source}: ${branchWords(e)} → ${byId.get(e.target)?.label || e.target}`));
  const schedule = scheduleOf(graph);
  const legend = schedule === null ? null : h("p", { class: "flow-legend" },
    h("span", { class: "open" }, `Solid: open (${schedule})`), " ",
    h("span", { class: "closed" }, `Dashed: closed`));
  return h("div", { class: "flow" }, root, legend,
    h("details", {}, h("summary", {}, "The flow in words"),
      sentences.length ? h("ul", { class: "flow-list" }, sentences) : h("p", {}, "Nothing leads anywhere yet.")));
}
