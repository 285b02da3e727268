// Holidays and special days of opening hours. The API keeps single dates: `closed_dates`
// (closed all day) and `special` ({date, from, to}: other hours that day, several entries for
// several intervals). People think in ranges ("closed 24–26 December"), so the page shows
// runs of consecutive days treated alike as one row, and a row's range becomes its dates again
// when saved.

import { h, field, select } from "./dom.js";

const KINDS = [["closed", "Closed all day"], ["hours", "Open these hours only"]];
// A range longer than this is almost surely a typo (the API takes at most 1000 dates).
const MAX_DAYS = 366;
const DAY_MS = 86400000;

function dayNumber(iso) {
  return Math.round(Date.parse(`${iso}T00:00:00Z`) / DAY_MS);
}

function isoOf(number) {
  return new Date(number * DAY_MS).toISOString().slice(0, 10);
}

/** "24 Dec 2026" for a YYYY-MM-DD date (the calendar day, whatever the browser's zone). */
export function dayWords(iso) {
  const ms = Date.parse(`${iso}T00:00:00Z`);
  if (Number.isNaN(ms)) return iso;
  return new Date(ms).toLocaleDateString(undefined, { timeZone: "UTC", day: "numeric", month: "short", year: "numeric" });
}

function rangeWords(first, last) {
  return first === last ? dayWords(first) : `${dayWords(first)} – ${dayWords(last)}`;
}

/**
 * The schedule's closed dates and special hours as rows: [{first, last, kind, from, to}],
 * in date order; consecutive days with the same hours share a row (one per interval).
 */
export function rowsOf(schedule) {
  const byDate = new Map();
  for (const d of schedule.closed_dates || []) byDate.set(d, "closed");
  for (const s of schedule.special || []) {
    const hours = byDate.get(s.date);
    byDate.set(s.date, [...(Array.isArray(hours) ? hours : []), `${s.from}-${s.to}`]);
  }
  const keyOf = (hours) => (hours === "closed" ? hours : [...hours].sort().join(","));
  const runs = [];
  for (const date of [...byDate.keys()].sort()) {
    const key = keyOf(byDate.get(date));
    const last = runs[runs.length - 1];
    if (last && last.key === key && dayNumber(last.last) + 1 === dayNumber(date)) last.last = date;
    else runs.push({ first: date, last: date, key });
  }
  return runs.flatMap((run) => (run.key === "closed"
    ? [{ first: run.first, last: run.last, kind: "closed", from: "", to: "" }]
    : run.key.split(",").map((span) => {
      const [from, to] = span.split("-");
      return { first: run.first, last: run.last, kind: "hours", from, to };
    })));
}

/** One row in words: "24 Dec 2026 – 26 Dec 2026: closed". */
export function rowWords(row) {
  const when = rangeWords(row.first, row.last);
  return row.kind === "closed" ? `${when}: closed` : `${when}: open ${row.from}–${row.to}`;
}

/**
 * The editor of a schedule's special days inside its dialog: {element, collect(), blame()}.
 * collect() gives {closed_dates, special} or throws a message naming the row; blame(error)
 * marks the row a server's refusal of `closed_dates[i]` / `special[i]` points at and says which.
 */
export function specialDaysEditor(schedule) {
  const list = h("div", { class: "special-days" });
  const empty = h("p", { class: "hint" }, "No holidays or special days.");
  let origins = { closed_dates: [], special: [] };

  const refresh = () => {
    const rows = [...list.querySelectorAll(".special-row")];
    empty.hidden = rows.length > 0;
    rows.forEach((row, i) => { row.querySelector("legend").textContent = `Day or days ${i + 1}`; });
  };

  const addRow = (r = { first: "", last: "", kind: "closed", from: "10:00", to: "14:00" }) => {
    const first = h("input", { type: "date", name: "special_first", value: r.first, required: true });
    const last = h("input", { type: "date", name: "special_last", value: r.last === r.first ? "" : r.last });
    const kind = select(KINDS, r.kind, { name: "special_kind" });
    const from = h("input", { type: "time", name: "special_from", value: r.from || "10:00" });
    const to = h("input", { type: "time", name: "special_to", value: r.to || "14:00" });
    const hours = h("div", { class: "row" }, field("Open from", from), field("Until", to));
    const showHours = () => { hours.hidden = kind.value !== "hours"; };
    kind.addEventListener("change", showHours);
    showHours();
    const remove = h("button", { type: "button", class: "link", name: "remove_special" }, "Remove");
    const row = h("fieldset", { class: "special-row" }, h("legend", {}),
      h("div", { class: "row" }, field("First day", first), field("Last day (empty: just the one)", last)),
      h("div", { class: "row" }, field("That day", kind), h("div", { class: "field end" }, remove)),
      hours);
    remove.addEventListener("click", () => { row.remove(); refresh(); });
    list.appendChild(row);
    refresh();
    return row;
  };

  for (const r of rowsOf(schedule || {})) addRow(r);
  const add = h("button", { type: "button", name: "add_special" }, "Add a holiday or special day");
  add.addEventListener("click", () => addRow().querySelector("input").focus());
  const element = h("div", { class: "field" }, h("span", { class: "label" }, "Holidays and special days"),
    h("p", { class: "hint" }, "Days the weekly hours do not hold: closed all day, or open other hours."),
    empty, list, h("div", {}, add));
  refresh();

  const collect = () => {
    const closed = [];
    const special = [];
    origins = { closed_dates: [], special: [] };
    for (const row of list.querySelectorAll(".special-row")) row.classList.remove("invalid");
    [...list.querySelectorAll(".special-row")].forEach((row, i) => {
      const value = (name) => row.querySelector(`[name=${name}]`).value;
      const name = `Day or days ${i + 1}`;
      const first = value("special_first");
      const last = value("special_last") || first;
      const fail = (why) => {
        row.classList.add("invalid");
        throw new Error(`${name}: ${why}`);
      };
      if (!first) fail("choose the first day.");
      const start = dayNumber(first);
      const end = dayNumber(last);
      if (Number.isNaN(start) || Number.isNaN(end)) fail("a day is not a date in the calendar.");
      if (end < start) fail(`the last day (${dayWords(last)}) is before the first (${dayWords(first)}).`);
      if (end - start >= MAX_DAYS) fail(`at most ${MAX_DAYS} days at once.`);
      const hours = value("special_kind") === "hours";
      for (let n = start; n <= end; n += 1) {
        if (hours) {
          special.push({ date: isoOf(n), from: value("special_from"), to: value("special_to") });
          origins.special.push(row);
        } else {
          closed.push(isoOf(n));
          origins.closed_dates.push(row);
        }
      }
    });
    return { closed_dates: closed, special };
  };

  /** The row a refusal names, marked, and its words before the server's; else the text. */
  const blame = (text) => {
    const rows = [...list.querySelectorAll(".special-row")];
    const at = /^(closed_dates|special)\[(\d+)\]/.exec(text);
    let row = at ? origins[at[1]][Number(at[2])] : null;
    if (!row) {
      // "closed_dates: 2026-12-24 is also in special: ...": the rows holding that day.
      const day = /(\d{4}-\d{2}-\d{2})/.exec(text);
      const covering = day ? rows.filter((r) => {
        const first = r.querySelector("[name=special_first]").value;
        const last = r.querySelector("[name=special_last]").value || first;
        return first <= day[1] && day[1] <= last;
      }) : [];
      for (const r of covering) r.classList.add("invalid");
      row = covering[0] || null;
    }
    if (!row) return text;
    row.classList.add("invalid");
    return `Day or days ${rows.indexOf(row) + 1}: ${text}`;
  };

  return { element, collect, blame };
}
