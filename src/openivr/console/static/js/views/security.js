// Security events (admins only, read-only): wrong passwords, attempts refused during a ban,
// and the bans themselves, for the account's users; who, from where, when and why, newest first.

import { h, put, field, select, when } from "../dom.js";
import { api, acct, list, ApiError } from "../api.js";
import { userName } from "../data.js";
import { heading, busy, adminsOnly } from "../ui.js";

const PAGE = 50;
const KINDS = [["", "Everything"], ["failure", "Wrong passwords"], ["refusal", "Refused attempts"], ["ban", "Bans"]];
const CHANNELS = [["", "Phones and sign-ins"], ["sip", "Phones (SIP)"], ["api", "Sign-ins (API and console)"]];
const REASONS = {
  wrong_password: "the password did not match",
  address_banned: "the address is banned (too many wrong passwords from it)",
  user_locked: "the user name is locked for this address (too many wrong passwords for it)",
};

function what(e) {
  if (e.kind === "failure") return "Wrong password";
  if (e.kind === "refusal") return e.count > 1 ? `Refused ${e.count} times` : "Refused";
  if (e.kind === "ban") return e.reason === "user_locked" ? "User name locked" : "Address banned";
  return e.kind;
}

function why(e) {
  const reason = REASONS[e.reason] || (e.reason || "").replace(/_/g, " ");
  if (e.kind !== "ban") return reason;
  const d = e.detail || {};
  const after = d.failures ? `after ${d.failures} wrong passwords` : "";
  const until = d.until ? `until ${when(d.until)}` : "";
  return [after, until].filter(Boolean).join(", ") || reason;
}

export async function show(main, _unused, state = { offset: 0, filters: {} }) {
  document.title = "Security — OpenIVR";
  const f = state.filters;
  let events;
  let users;
  try {
    [events, users] = await Promise.all([
      api("GET", acct("/security-event"), { query: { kind: f.kind, channel: f.channel, limit: PAGE + 1, offset: state.offset } }),
      list(acct("/user")),
    ]);
  } catch (error) {
    if (error instanceof ApiError && error.status === 403) {
      adminsOnly(main, "Security", "security events", error);
      return;
    }
    throw error;
  }
  const names = Object.fromEntries(users.map((u) => [u.user_id, userName(u)]));
  const all = Array.isArray(events.data) ? events.data : [];
  const shown = all.slice(0, PAGE);

  const kind = select(KINDS, f.kind || "", { name: "kind" });
  const channel = select(CHANNELS, f.channel || "", { name: "channel" });
  const apply = h("button", { type: "submit", class: "primary" }, "Show");
  const form = h("form", { class: "row filters", "aria-label": "Which events" },
    field("What", kind), field("Where", channel), h("div", { class: "field end" }, apply));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    show(main, undefined, { offset: 0, filters: { kind: kind.value, channel: channel.value } });
  });

  const rows = shown.map((e) => {
    const person = e.user_id && names[e.user_id] ? `${names[e.user_id]} (${e.username})` : e.username || "—";
    return h("tr", { dataset: { eventId: e.event_id, kind: e.kind } },
      h("td", { "data-label": "When" }, when(e.time)),
      h("td", { "data-label": "What" }, h("span", { class: `badge ${e.kind === "failure" ? "warning" : "failed"}` }, what(e))),
      h("td", { "data-label": "Who" }, person),
      h("td", { "data-label": "From" }, h("div", {}, e.source || "—", h("br"), h("span", { class: "hint" }, e.channel === "sip" ? "a phone (SIP)" : "a sign-in (API)"))),
      h("td", { "data-label": "Why" }, why(e)));
  });
  const older = h("button", { type: "button", name: "older", disabled: all.length <= PAGE }, "Older events");
  older.addEventListener("click", busy(older, () => show(main, undefined, { offset: state.offset + PAGE, filters: f })));
  const newer = h("button", { type: "button", name: "newer", disabled: state.offset === 0 }, "Newer events");
  newer.addEventListener("click", busy(newer, () => show(main, undefined, { offset: Math.max(0, state.offset - PAGE), filters: f })));
  const filtered = Boolean(f.kind || f.channel);
  put(main, heading("Security"),
    h("p", { class: "lead" }, "Wrong passwords for the account's users, attempts refused while an address or user name is banned, and the bans, newest first. Phones and sign-ins from one address that keep guessing are banned for a while by themselves."),
    form,
    shown.length
      ? h("div", { class: "table-wrap" }, h("table", { class: "stack security" },
        h("thead", {}, h("tr", {}, ["When", "What", "Who", "From", "Why"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, rows)))
      : h("p", { class: "empty" }, state.offset ? "No older events." : filtered ? "No events match." : "Nothing has happened: no wrong passwords, no bans."),
    shown.length < all.length || state.offset ? h("nav", { class: "row pager", "aria-label": "Pages" }, newer, older) : null);
}
