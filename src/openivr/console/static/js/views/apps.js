// Voice apps: the list, and create, rename, delete.

import { h, put, field, select } from "../dom.js";
import { api, acct, list, ApiError } from "../api.js";
import { appKind, appHref } from "../data.js";
import { toast, showError, confirmAction, ask, heading, busy, describe, dialog } from "../ui.js";

const TYPES = [["ivr", "Phone menu (callers press keys)"], ["mailbox", "Voicemail box"]];
const ORDER = { ivr: 0, mailbox: 1, sysprompt: 2 };

export async function show(main) {
  document.title = "Voice apps — OpenIVR";
  const apps = await list(acct("/voiceapp"));
  apps.sort((a, b) => (ORDER[a.app_type] ?? 3) - (ORDER[b.app_type] ?? 3) || a.name.localeCompare(b.name));
  const problems = h("div", { hidden: true });

  const name = h("input", { type: "text", name: "name", required: true, maxlength: "100", placeholder: "e.g. Opening hours menu" });
  const type = select(TYPES, "ivr", { name: "app_type" });
  const create = h("button", { type: "submit", class: "primary" }, "Create");
  const form = h("form", { class: "inline-form", "aria-label": "Create a voice app" },
    field("Name", name), field("Kind", type), h("div", { class: "field end" }, create));
  form.addEventListener("submit", busy(create, async () => {
    put(problems);
    try {
      const { data } = await api("POST", acct("/voiceapp"), { json: { app_type: type.value, name: name.value.trim() } });
      toast(`Created “${data.name}”.`);
      window.location.hash = appHref(data);
    } catch (error) {
      showError(problems, error, "Not created:");
    }
  }));

  const rows = apps.map((app) => appRow(app, problems, () => show(main)));
  put(main,
    heading("Voice apps"),
    h("p", { class: "lead" }, "What callers hear and where their calls go. Open a menu to change its keys, or its messages to record new greetings."),
    problems,
    h("ul", { class: "cards apps" }, rows),
    h("section", { class: "panel", "aria-labelledby": "new-app" },
      h("h2", { id: "new-app" }, "New voice app"), form));
}

function appRow(app, problems, reload) {
  const actions = [
    h("a", { class: "button", href: appHref(app) }, app.app_type === "sysprompt" ? "Settings" : "Edit"),
    h("a", { class: "button", href: appHref(app, "/prompts") }, "Messages"),
  ];
  if (app.app_type !== "sysprompt") {
    actions.push(h("a", { class: "button", href: `#/try/${encodeURIComponent(app.app_id)}` }, "Try a call"));
  }
  if (app.app_type === "mailbox") {
    actions.push(h("a", { class: "button", href: `#/voicemail/${encodeURIComponent(app.app_id)}` }, "Voicemail"));
  }
  const rename = h("button", { type: "button", "aria-label": `Rename ${app.name}` }, "Rename");
  rename.addEventListener("click", busy(rename, async () => {
    const name = await ask(`Rename “${app.name}”`, "New name", app.name);
    if (!name || name === app.name) return;
    try {
      await api("PUT", acct(`/voiceapp/${encodeURIComponent(app.app_id)}`), { json: { name } });
      toast(`Renamed to “${name}”.`);
      await reload();
    } catch (error) {
      showError(problems, error, "Not renamed:");
    }
  }));
  actions.push(rename);
  if (app.app_type !== "sysprompt") {
    const del = h("button", { type: "button", class: "danger-text", "aria-label": `Delete ${app.name}` }, "Delete");
    del.addEventListener("click", busy(del, () => removeApp(app, problems, reload)));
    actions.push(del);
  }
  return h("li", { class: "card", dataset: { appId: app.app_id } },
    h("div", { class: "card-main" },
      h("h2", { class: "card-title" }, h("a", { href: appHref(app) }, app.name || "(no name)")),
      h("p", { class: "meta" }, h("span", { class: `badge ${app.app_type}` }, appKind(app)),
        app.shortcode && app.app_type !== "sysprompt" ? h("span", {}, " Dial ", h("code", {}, app.shortcode)) : null,
        summary(app) ? h("span", { class: "summary" }, summary(app)) : null)),
    h("div", { class: "card-actions" }, actions));
}

/** One line on what an app does, e.g. "Keys 1, 2, 3 in use". */
function summary(app) {
  if (app.app_type === "ivr") {
    if (app.play_menu === "no") return "Plays a message, then goes on";
    const used = Object.entries(app.menu || {})
      .filter(([k, a]) => k.startsWith("digit_") && a && a.action && a.action !== "disconnect")
      .map(([k]) => k.replace("digit_", "").replace("star", "*").replace("hash", "#"));
    return used.length ? `Keys ${used.join(", ")} in use` : "No keys in use yet";
  }
  if (app.app_type === "mailbox") {
    if (app.deliver_to === "email") return `Messages e-mailed to ${app.deliver_to_details}`;
    if (app.deliver_to === "user") return "Messages e-mailed to a person";
    return "Messages kept here";
  }
  return "";
}

async function removeApp(app, problems, reload) {
  const ok = await confirmAction(`Delete “${app.name}”?`,
    "The app and its messages are deleted for good. Callers can no longer reach it.");
  if (!ok) return;
  const path = acct(`/voiceapp/${encodeURIComponent(app.app_id)}`);
  try {
    await api("DELETE", path);
  } catch (error) {
    if (!(error instanceof ApiError) || error.code !== "in_use") {
      showError(problems, error, "Not deleted:");
      return;
    }
    const answer = await dialog(`“${app.name}” is still in use`,
      h("div", {}, h("p", { class: "alert warn" }, describe(error)),
        h("p", {}, "Delete it anyway? Those keys and numbers will then lead nowhere until you change them.")),
      [{ label: "Keep it", value: false }, { label: "Delete anyway", value: true, class: "danger" }]);
    if (answer !== true) return;
    try {
      await api("DELETE", path, { query: { force: "true" } });
    } catch (again) {
      showError(problems, again, "Not deleted:");
      return;
    }
  }
  toast(`Deleted “${app.name}”.`);
  await reload();
}
