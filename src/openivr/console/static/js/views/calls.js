// The call log: every call the node carried, newest first, with the API's filters (caller,
// number or app dialled, app visited, time), and a call's legs (transfers) and keys.

import { h, put, field, select, seconds, when, instantOf } from "../dom.js";
import { api, acct, list } from "../api.js";
import { serverFeatures, userName } from "../data.js";
import { heading, busy, describe } from "../ui.js";

const PAGE = 50;
const OUTCOMES = {
  voicemail: "Left a voicemail", transferred: "Put through", hangup: "Ended", rejected: "Refused",
  abandoned: "Caller hung up", failed: "Failed", busy: "Busy", connected: "Callback connected",
  prompt_recorded: "Recorded a message by phone",
};
// How a callback's leg (call1_busy, call2_no_answer, ...) kept it from connecting.
const LEG_ENDS = {
  busy: "busy", no_answer: "did not answer", rejected: "refused", unreachable: "unreachable",
  no_trunk: "needs a SIP trunk", cancelled: "cancelled", hangup: "hung up",
};

function outcomeText(outcome) {
  if (OUTCOMES[outcome]) return OUTCOMES[outcome];
  const leg = /^call([12])_([a-z_]+)$/.exec(outcome || "");
  if (leg) return `Callback: call ${leg[1]} ${LEG_ENDS[leg[2]] || leg[2].replace(/_/g, " ")}`;
  return outcome || "—";
}

function plain(value) {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** How a ring ended, in words ("no_answer" → "no answer"). */
function result(status) {
  return status ? String(status).replace(/_/g, " ") : "—";
}

/**
 * One line saying whom a leg rang and how it went: for a team's ring its name, the member
 * (or, rung at once, every member) by name and each one's result, in the order they rang.
 */
function legSummary(leg, names) {
  const person = (id) => names.users[id] || id;
  if (!leg.team_id) return `${leg.uri || leg.target || "—"}: ${result(leg.status)}`;
  const team = names.teams[leg.team_id] || leg.team_id;
  if (Array.isArray(leg.members)) {
    const each = leg.members.map((m) => `${person(m.user_id)} (${result(m.status)})`).join(", ");
    return `Team ${team}, everyone at once: ${each}`;
  }
  const note = leg.detail ? ` (${leg.detail})` : "";
  return `Team ${team}, #${leg.attempt}: ${person(leg.user_id)} — ${result(leg.status)}${note}`;
}

/** A leg's field as a person reads it: names for ids; members are in the summary. */
function legValue(key, value, names) {
  if (key.endsWith("app_id")) return names.apps[value] || value;
  if (key === "user_id" || key === "answered_by") return names.users[value] || plain(value);
  if (key === "team_id") return names.teams[value] || value;
  return plain(value);
}

export async function show(main, _unused, state = { offset: 0, filters: {} }) {
  document.title = "Call log — OpenIVR";
  const features = await serverFeatures();
  const [apps, users, teams] = await Promise.all([
    list(acct("/voiceapp")), list(acct("/user")), features.teams ? list(acct("/team")) : Promise.resolve([]),
  ]);
  const names = Object.fromEntries(apps.map((a) => [a.app_id, a.name]));
  // What a leg's ids stand for, so whom a call rang reads as names.
  const legNames = {
    apps: names,
    users: Object.fromEntries(users.map((u) => [u.user_id, userName(u)])),
    teams: Object.fromEntries(teams.map((t) => [t.team_id, t.name])),
  };
  const f = state.filters;
  const from = h("input", { type: "tel", name: "from", value: f.from || "", placeholder: "+46701234567" });
  const to = h("input", { type: "text", name: "to", value: f.to || "", placeholder: "+46812345678 or *21" });
  const app = select([["", "Any"], ...apps.filter((a) => a.app_type !== "sysprompt").map((a) => [a.app_id, a.name])], f.app_id || "", { name: "app_id" });
  const since = h("input", { type: "datetime-local", name: "since", value: f.sinceLocal || "" });
  const until = h("input", { type: "datetime-local", name: "until", value: f.untilLocal || "" });
  const apply = h("button", { type: "submit", class: "primary" }, "Show calls");
  const filtered = Object.values(f).some(Boolean);
  const form = h("form", { class: "filters", "aria-label": "Which calls" },
    h("div", { class: "row" }, field("From (caller)", from), field("To (number or code dialled)", to), field("Through app", app)),
    h("div", { class: "row" }, field("Started from", since), field("Started before", until), h("div", { class: "field end" }, apply)));
  const filters = h("details", { class: "panel", open: filtered || window.matchMedia("(min-width: 721px)").matches },
    h("summary", {}, filtered ? "Filters (some calls are hidden)" : "Filters"), form);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    show(main, undefined, { offset: 0, filters: {
      from: from.value.trim(), to: to.value.trim(), app_id: app.value,
      sinceLocal: since.value, untilLocal: until.value,
    } });
  });
  const out = h("div", { "aria-live": "polite" });
  put(main, heading("Call log"), h("p", { class: "lead" }, "Every call, newest first. Open a call to see the keys pressed and whom it rang."), filters, out);
  let calls;
  try {
    calls = await list(acct("/call"), { query: {
      from: f.from, to: f.to, app_id: f.app_id, since: instantOf(f.sinceLocal), until: instantOf(f.untilLocal),
      limit: PAGE, offset: state.offset,
    } });
  } catch (error) {
    put(out, h("p", { class: "alert error", role: "alert" }, describe(error)));
    return;
  }
  if (!calls.length) {
    put(out, h("p", { class: "empty" }, state.offset ? "No older calls." : "No calls match."));
    return;
  }
  const rows = [];
  for (const c of calls) {
    const detailRow = h("tr", { class: "call-detail", hidden: true }, h("td", { colspan: "7" }));
    const open = h("button", { type: "button", class: "link", "aria-expanded": "false", name: "open" }, when(c.start_time));
    open.addEventListener("click", () => {
      const show = detailRow.hidden;
      detailRow.hidden = !show;
      open.setAttribute("aria-expanded", String(show));
      if (show && !detailRow.firstChild.firstChild) put(detailRow.firstChild, callDetail(c, legNames));
    });
    rows.push(h("tr", { dataset: { callId: c.call_id } },
      h("td", { "data-label": "When" }, open),
      h("td", { "data-label": "From" }, c.from || "—"),
      h("td", { "data-label": "To" }, names[c.to] || c.to || "—"),
      h("td", { "data-label": "Apps" }, (c.apps || []).map((id) => names[id] || id).join(" → ") || "—"),
      h("td", { "data-label": "Keys" }, c.keys ? h("code", {}, c.keys) : "—"),
      h("td", { "data-label": "Outcome" }, outcomeText(c.outcome)),
      h("td", { "data-label": "Length" }, c.duration !== null && c.duration !== undefined ? seconds(c.duration) : "—")), detailRow);
  }
  const older = h("button", { type: "button", disabled: calls.length < PAGE }, "Older calls");
  older.addEventListener("click", busy(older, () => show(main, undefined, { offset: state.offset + PAGE, filters: f })));
  const newer = h("button", { type: "button", disabled: state.offset === 0 }, "Newer calls");
  newer.addEventListener("click", busy(newer, () => show(main, undefined, { offset: Math.max(0, state.offset - PAGE), filters: f })));
  put(out,
    h("div", { class: "table-wrap" }, h("table", { class: "stack calls" },
      h("thead", {}, h("tr", {}, ["When", "From", "To", "Apps", "Keys", "Outcome", "Length"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows))),
    h("nav", { class: "row pager", "aria-label": "Pages" }, newer, older));
}

function callDetail(c, names) {
  const facts = [
    ["Answered", when(c.answer_time) || "—"], ["Ended", when(c.end_time) || "—"],
    ["Ended by", plain(c.ended_by)], ["SIP status", plain(c.sip_status)], ["Node", plain(c.node)],
    ["Call id", plain(c.call_id)],
  ];
  for (const [k, v] of Object.entries(c.detail || {})) facts.push([k.replace(/_/g, " "), plain(v)]);
  const legs = (c.transfers || []).map((leg, i) => h("li", {},
    h("strong", {}, `Leg ${i + 1}: `), h("span", { class: "leg-summary" }, legSummary(leg, names)), h("br"),
    h("span", { class: "leg-facts" }, Object.entries(leg).filter(([k]) => k !== "members")
      .map(([k, v]) => `${k.replace(/_/g, " ")}: ${legValue(k, v, names)}`).join(" · "))));
  return h("div", { class: "detail" },
    h("dl", { class: "dl" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    h("h3", {}, "Legs"), legs.length ? h("ol", { class: "legs" }, legs) : h("p", { class: "hint" }, "No one was rung."));
}
