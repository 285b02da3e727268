// Phone numbers the node answers for, and where each one's calls go.

import { h, put, field, select } from "../dom.js";
import { api, acct, list } from "../api.js";
import { accountData, userName, appKind } from "../data.js";
import { toast, showError, heading, busy, formDialog, confirmAction } from "../ui.js";

const TYPES = [["app", "A voice app"], ["user", "A person"], ["csg", "A team"], ["phnum", "Another number"], ["sip", "A SIP address"], ["", "Nowhere (not answered)"]];

function targetId(n) {
  if (n.connect_to && typeof n.connect_to === "object") return n.connect_to.app_id || "";
  return n.connect_to === null || n.connect_to === undefined ? "" : String(n.connect_to);
}

function goesTo(n, ctx) {
  const id = targetId(n);
  switch (n.connect_to_type) {
    case "app": {
      const app = ctx.apps.find((a) => a.app_id === id);
      return app ? `${app.name} (${appKind(app).toLowerCase()})` : `Voice app ${id}`;
    }
    case "user": {
      const user = ctx.users.find((u) => u.user_id === id);
      return user ? userName(user) : `User ${id}`;
    }
    case "csg": {
      const team = (ctx.teams || []).find((t) => t.team_id === id);
      return team ? `Team ${team.name}` : `Team ${id}`;
    }
    case "phnum": return `Number ${id}`;
    case "sip": return `SIP ${id}`;
    default: return "Nowhere";
  }
}

/** The destination controls: a kind and, for it, a choice or a typed address. */
function destination(ctx, current) {
  const types = TYPES.filter(([t]) => t !== "csg" || ctx.teams);
  const kind = select(types, current ? current.connect_to_type || "" : "app", { name: "connect_to_type" });
  const holder = h("div");
  let control = null;
  const build = () => {
    holder.replaceChildren();
    const id = current && current.connect_to_type === kind.value ? targetId(current) : "";
    let options = null;
    if (kind.value === "app") options = ctx.apps.filter((a) => a.app_type !== "sysprompt").map((a) => [a.app_id, `${a.name} (${appKind(a).toLowerCase()})`]);
    if (kind.value === "user") options = ctx.users.map((u) => [u.user_id, userName(u)]);
    if (kind.value === "csg") options = (ctx.teams || []).map((t) => [t.team_id, t.name]);
    if (options) {
      control = select(options, id || (options[0] && options[0][0]), { name: "connect_to" });
      holder.appendChild(field("Which one", control));
    } else if (kind.value === "phnum" || kind.value === "sip") {
      control = h("input", { type: kind.value === "phnum" ? "tel" : "text", name: "connect_to", value: id, placeholder: kind.value === "phnum" ? "+46701234567" : "sip:reception@example.com" });
      holder.appendChild(field(kind.value === "phnum" ? "Number" : "SIP address", control));
    } else {
      control = null;
    }
  };
  kind.addEventListener("change", build);
  build();
  return {
    el: [field("Calls go to", kind), holder],
    value: () => {
      const body = { connect_to_type: kind.value };
      if (control) {
        body.connect_to = kind.value === "app"
          ? { app_type: (ctx.apps.find((a) => a.app_id === control.value) || {}).app_type || "ivr", app_id: control.value }
          : control.value.trim();
      }
      return body;
    },
  };
}

export async function show(main) {
  document.title = "Phone numbers — OpenIVR";
  const ctx = await accountData();
  const problems = h("div", { hidden: true });
  const reload = () => show(main);
  const rows = ctx.numbers.map((n) => {
    const path = acct(`/phonenumbersubscription/${encodeURIComponent(n.phnum)}`);
    const change = h("button", { type: "button", name: "change", "aria-label": `Change where ${n.phnum} goes` }, "Change");
    change.addEventListener("click", busy(change, async () => {
      const dest = destination(ctx, n);
      if (await formDialog(`Where calls to ${n.phnum} go`, h("div", {}, dest.el), "Save", () => api("PUT", path, { json: dest.value() }))) {
        toast(`Saved where ${n.phnum} goes.`);
        await reload();
      }
    }));
    const del = h("button", { type: "button", name: "delete", class: "danger-text", "aria-label": `Remove ${n.phnum}` }, "Remove");
    del.addEventListener("click", busy(del, async () => {
      if (!(await confirmAction(`Remove ${n.phnum}?`, "Calls to this number are no longer answered.", "Remove"))) return;
      try {
        await api("DELETE", path);
        toast(`Removed ${n.phnum}.`);
        await reload();
      } catch (error) {
        showError(problems, error, "Not removed:");
      }
    }));
    return h("li", { class: "card", dataset: { phnum: n.phnum } },
      h("div", { class: "card-main" }, h("h2", { class: "card-title" }, n.phnum),
        h("p", { class: "meta" }, "Calls go to ", h("strong", { class: "goes-to" }, goesTo(n, ctx)))),
      h("div", { class: "card-actions" }, change, del));
  });
  const phnum = h("input", { type: "tel", name: "phnum", placeholder: "+46812345678", required: true });
  const dest = destination(ctx, null);
  const add = h("button", { type: "submit", class: "primary" }, "Add the number");
  const form = h("form", { class: "panel", "aria-labelledby": "add-number-h" },
    h("h2", { id: "add-number-h" }, "Add a number"),
    h("p", { class: "hint" }, "A number your SIP provider sends to this server, in international form (+ and country code)."),
    field("Number", phnum), dest.el, h("div", { class: "row" }, add));
  form.addEventListener("submit", busy(add, async () => {
    put(problems);
    try {
      await api("POST", acct("/phonenumbersubscription"), { json: { phnum: phnum.value.trim(), ...dest.value() } });
      toast(`Added ${phnum.value.trim()}.`);
      await reload();
    } catch (error) {
      showError(problems, error, "Not added:");
    }
  }));
  put(main,
    heading("Phone numbers"),
    h("p", { class: "lead" }, "The numbers callers dial, and where each one's calls go."),
    problems,
    rows.length ? h("ul", { class: "cards numbers" }, rows) : h("p", { class: "empty" }, "No numbers yet."),
    form);
}
