// Building the page. Text always goes in as text nodes (textContent), never as HTML: a name
// like "<script>" a user typed shows as those characters. No string is ever parsed as HTML.

let counter = 0;

/** A fresh element id with a readable prefix. */
export function uid(prefix = "el") {
  counter += 1;
  return `${prefix}-${counter}`;
}

function append(el, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child) append(el, c);
  } else if (child instanceof Node) {
    el.appendChild(child);
  } else {
    el.appendChild(document.createTextNode(String(child)));
  }
}

/**
 * h("button", {class: "primary", onclick: fn, "aria-label": "..."}, "Save")
 * Props: class, text, dataset, on<event> handlers, boolean attributes (true/false), other
 * attributes as strings, and the DOM properties value/checked/disabled/selected/hidden.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") {
      el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (["value", "checked", "disabled", "selected", "hidden", "indeterminate"].includes(key)) {
      el[key] = value;
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

/** Replace an element's children. */
export function put(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A labelled form control: the label names it, an optional hint describes it. */
export function field(label, control, hint) {
  if (!control.id) control.id = uid("f");
  const parts = [h("label", { for: control.id }, label), control];
  if (hint) {
    const hintId = uid("hint");
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("p", { class: "hint", id: hintId }, hint));
  }
  return h("div", { class: "field" }, parts);
}

/** A checkbox with its label after it. */
export function checkbox(label, checked, props = {}) {
  const input = h("input", { type: "checkbox", checked, ...props });
  input.id = input.id || uid("cb");
  const wrap = h("div", { class: "check" }, input, h("label", { for: input.id }, label));
  return { wrap, input };
}

/** A <select> of [value, label] pairs (or optgroups: {group, options}). */
export function select(options, value, props = {}) {
  const el = h("select", props);
  const add = (parent, [val, label]) => {
    parent.appendChild(h("option", { value: val, selected: val === value }, label));
  };
  for (const opt of options) {
    if (opt && opt.group) {
      const group = h("optgroup", { label: opt.group });
      for (const o of opt.options) add(group, o);
      el.appendChild(group);
    } else {
      add(el, opt);
    }
  }
  if (value !== undefined && value !== null) el.value = value;
  return el;
}

/** An <audio> player for a same-origin path (signed audio links need no token). */
export function player(src, label) {
  return h("audio", { controls: true, preload: "none", src, "aria-label": label });
}

/** A same-origin path from an absolute link the API hands out (its public URL may differ). */
export function localPath(url) {
  if (!url) return "";
  try {
    const parsed = new URL(url, window.location.origin);
    return parsed.pathname + parsed.search;
  } catch {
    return "";
  }
}

/** "2.4 s" or "1 min 5 s". */
export function seconds(value) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return "";
  const s = Number(value);
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

/** A datetime-local input's value (this browser's time) as an ISO instant; undefined if empty. */
export function instantOf(localValue) {
  if (!localValue) return undefined;
  const date = new Date(localValue);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** A date the API gave (ISO 8601 or the hosted API's 20240501T12:00:00Z) in local words. */
export function when(value) {
  if (!value) return "";
  let text = String(value);
  const compact = /^(\d{4})(\d{2})(\d{2})T(.*)$/.exec(text);
  if (compact) text = `${compact[1]}-${compact[2]}-${compact[3]}T${compact[4]}`;
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
}
