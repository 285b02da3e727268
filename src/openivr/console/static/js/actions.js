// The picker of what a key (or the end of an announcement) does: one <select> saying what
// happens, and a second control naming who or what (a person, a team, an app, a message...).

import { h, select, uid } from "./dom.js";
import { userName, appKind } from "./data.js";

const KINDS = {
  "": "Nothing (not in use)",
  user: "Ring a person",
  csg: "Ring a team",
  app: "Go to another voice app",
  prompt: "Play a message",
  phnum: "Call a phone number",
  sip: "Call a SIP address",
  other: "Call a number or SIP address",
  repeat: "Repeat the menu",
  hangup: "Hang up",
};

/** What kind of action an API action {action, to, id} is. */
export function kindOf(act) {
  const a = act || {};
  if (!a.action || a.action === "disconnect") return "";
  if (a.action === "call") return ["user", "csg", "phnum", "sip", "other"].includes(a.to) ? a.to : "other";
  if (a.action === "connect") return "app";
  if (a.action === "play") return "prompt";
  return a.action; // repeat, hangup
}

/** The API action for a kind and a target. */
export function actionOf(kind, target) {
  const id = (target || "").trim();
  switch (kind) {
    case "": return { action: "", to: "", id: "" };
    case "app": return { action: "connect", to: "app", id };
    case "prompt": return { action: "play", to: "prompt", id };
    case "repeat": case "hangup": return { action: kind, to: "", id: "" };
    default: return { action: "call", to: kind, id };
  }
}

/** Options naming the account's things, for the target control of each kind. */
function targetOptions(kind, ctx, selfId) {
  if (kind === "user") {
    return ctx.users.map((u) => [u.user_id, u.extension ? `${userName(u)} (ext. ${u.extension})` : userName(u)]);
  }
  if (kind === "csg") return (ctx.teams || []).map((t) => [t.team_id, t.name || t.team_id]);
  if (kind === "app") {
    return ctx.apps.filter((a) => a.app_type !== "sysprompt" && a.app_id !== selfId)
      .map((a) => [a.app_id, `${a.name} (${appKind(a).toLowerCase()})`]);
  }
  if (kind === "prompt") {
    const groups = [];
    for (const app of ctx.apps) {
      const prompts = (ctx.prompts[app.app_id] || []);
      if (!prompts.length) continue;
      groups.push({ group: app.name, options: prompts.map((p) => [p.prompt_id, `${p.name}${p.type === "custom" ? "" : " (standard)"}`]) });
    }
    return groups;
  }
  return null;
}

function hasValue(options, value) {
  return options.some((o) => (o.group ? o.options.some(([v]) => v === value) : o[0] === value));
}

/**
 * A picker for one action. `what` names it for screen readers ("Key 2"); `name` prefixes the
 * controls' names. `menu` says whether "Repeat the menu" makes sense. Calls onChange on edits.
 * Returns {el, value(), focus()}.
 */
export function actionPicker(act, ctx, { what, name, menu = true, selfId, onChange }) {
  const kinds = ["", "user"];
  if (ctx.teams) kinds.push("csg");
  kinds.push("app", "prompt", "phnum", "sip");
  const current = kindOf(act);
  if (current === "other") kinds.push("other");
  if (menu || current === "repeat") kinds.push("repeat");
  kinds.push("hangup");
  const words = (k) => {
    if (k === "repeat" && !menu) return "Play it again";
    if (k === "" && !menu) return "Nothing (the default)";
    return KINDS[k];
  };
  const kindSelect = select(kinds.map((k) => [k, words(k)]), current,
    { name: `${name}-kind`, "aria-label": `${what}: what happens` });
  const holder = h("div", { class: "target" });
  let target = null;
  let shown = current;
  // What was chosen or typed for each kind, so switching back and forth loses nothing.
  const remembered = { [current]: (act && act.id) || "" };

  // The numbers a receptionist knows by name: the people's own numbers.
  const numbers = () => ctx.users.filter((u) => u.phnum).map((u) => [u.phnum, userName(u)]);

  const build = (kind, id) => {
    holder.replaceChildren();
    target = null;
    const options = targetOptions(kind, ctx, selfId);
    if (options) {
      const list = options.slice();
      if (id && !hasValue(list, id)) list.unshift([id, `Missing: ${id}`]);
      if (!id || !hasValue(list, id)) list.unshift(["", "Choose…"]);
      target = select(list, id || "", { name: `${name}-target`, "aria-label": `${what}: which ${kind === "user" ? "person" : kind === "csg" ? "team" : kind === "app" ? "voice app" : "message"}`, required: true });
    } else if (kind === "phnum" || kind === "sip" || kind === "other") {
      const listId = uid("numbers");
      target = h("input", {
        type: kind === "phnum" ? "tel" : "text",
        name: `${name}-target`,
        value: id || "",
        placeholder: kind === "phnum" ? "+46701234567" : kind === "sip" ? "sip:desk@example.com" : "+46701234567 or sip:desk@example.com",
        "aria-label": `${what}: ${kind === "phnum" ? "phone number" : "address"}`,
        autocomplete: "off",
        list: kind === "phnum" ? listId : undefined,
        required: true,
      });
      holder.appendChild(target);
      if (kind === "phnum") holder.appendChild(h("datalist", { id: listId }, numbers().map(([n, who]) => h("option", { value: n, label: who }))));
      target.addEventListener("input", () => onChange && onChange());
      return;
    }
    if (target) {
      target.addEventListener("change", () => onChange && onChange());
      holder.appendChild(target);
    } else {
      holder.appendChild(h("span", { class: "target-empty" }, kind === "" ? "" : "—"));
    }
  };

  kindSelect.addEventListener("change", () => {
    if (target) remembered[shown] = target.value;
    shown = kindSelect.value;
    build(shown, remembered[shown] || "");
    if (onChange) onChange();
  });
  build(current, remembered[current]);
  return {
    el: [kindSelect, holder],
    value: () => actionOf(kindSelect.value, target ? target.value : ""),
    focus: () => kindSelect.focus(),
  };
}
