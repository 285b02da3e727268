// Editing one voice app: an IVR (menu or announcement), a voicemail box, or the system
// messages. Saving sends If-Match with the ETag read: if someone else saved first the server
// answers 412 and the page says so — it never overwrites silently.

import { h, put, field, checkbox, select } from "../dom.js";
import { api, acct, ApiError } from "../api.js";
import { accountData, promptsOf, voiceList, voiceOptions, appKind, userName, appHref } from "../data.js";
import { actionPicker } from "../actions.js";
import { drawFlow } from "../flow.js";
import { toast, describe, heading, busy } from "../ui.js";
import { guardLeaving } from "../main.js";

const KEY_ROWS = [
  ["digit_1", "1"], ["digit_2", "2"], ["digit_3", "3"], ["digit_4", "4"], ["digit_5", "5"],
  ["digit_6", "6"], ["digit_7", "7"], ["digit_8", "8"], ["digit_9", "9"], ["digit_0", "0"],
  ["digit_star", "*"], ["digit_hash", "#"],
];
const SPECIAL_ROWS = [
  ["timeout", "No key", "When the caller presses nothing"],
  ["invalid", "Wrong key", "When the caller presses a key that is not in use"],
];

/** Words for a problem's field, e.g. menu.digit_2 → "Key 2". */
function fieldWords(name) {
  if (!name) return "";
  const m = /^menu\.(digit_(\d|star|hash)|timeout|invalid)/.exec(name);
  if (m) {
    if (m[1] === "timeout") return "No key pressed";
    if (m[1] === "invalid") return "Wrong key";
    const key = m[2] === "star" ? "*" : m[2] === "hash" ? "#" : m[2];
    return `Key ${key}`;
  }
  if (name.startsWith("final_action")) return "After the welcome message";
  if (name.startsWith("open_hours")) return "Opening hours";
  return name;
}

export async function show(main, appId) {
  const path = acct(`/voiceapp/${encodeURIComponent(appId)}`);
  const [{ data: app, etag }, ctx, voices] = await Promise.all([api("GET", path), accountData(), voiceList()]);
  ctx.prompts = await promptsOf(ctx.apps.filter((a) => a.app_type !== "sysprompt"));
  document.title = `${app.name} — OpenIVR`;
  const state = { app, etag, dirty: false, saving: false };
  const form = h("form", { class: "app-form", novalidate: true, "aria-label": `Settings of ${app.name}` });
  const problemsBox = h("div", { class: "form-problem", "aria-live": "assertive" });
  const stateText = h("span", { class: "state" }, "All changes saved");
  const save = h("button", { type: "submit", class: "primary", name: "save" }, "Save changes");
  const undo = h("button", { type: "button", name: "undo", disabled: true }, "Undo changes");
  const conflictBox = h("div", { class: "conflict" });
  const side = h("aside", { class: "side", "aria-label": "How calls flow" });

  let collect = () => ({});
  let refreshPreview = () => {};
  const changed = () => {
    state.dirty = true;
    stateText.textContent = "Changes not saved yet";
    stateText.classList.add("dirty");
    undo.disabled = false;
    refreshPreview();
  };
  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  guardLeaving(() => state.dirty);

  const ctxFull = { ...ctx, voices };
  if (app.app_type === "ivr") {
    ({ collect, refreshPreview } = ivrForm(form, app, ctxFull, side, () => collect()));
  } else if (app.app_type === "mailbox") {
    collect = mailboxForm(form, app, ctxFull);
  } else {
    collect = syspromptForm(form, app, ctxFull);
  }

  const markSaved = (saved, newEtag) => {
    state.app = saved;
    state.etag = newEtag || state.etag;
    state.dirty = false;
    stateText.textContent = "All changes saved";
    stateText.classList.remove("dirty");
    undo.disabled = true;
  };

  const reloadTheirs = async () => {
    state.dirty = false;
    await show(main, appId);
    toast("Loaded the version saved last.");
  };

  const saveWith = async (ifMatch) => {
    put(problemsBox);
    put(conflictBox);
    try {
      const { data, etag: newEtag } = await api("PUT", path, { json: collect(), ifMatch });
      markSaved(data, newEtag);
      toast("Saved.");
      refreshPreview(true);
    } catch (error) {
      if (error instanceof ApiError && error.status === 412) {
        showConflict();
      } else {
        put(problemsBox, h("p", { class: "alert error", role: "alert" }, "Not saved: ", describe(error)));
      }
    }
  };

  const showConflict = () => {
    const reload = h("button", { type: "button", class: "primary", name: "reload" }, "Load their version");
    const overwrite = h("button", { type: "button", name: "overwrite" }, "Save mine over theirs");
    reload.addEventListener("click", busy(reload, reloadTheirs));
    overwrite.addEventListener("click", busy(overwrite, async () => {
      const fresh = await api("GET", path);
      await saveWith(fresh.etag);
    }));
    put(conflictBox, h("div", { class: "alert warn", role: "alert" },
      h("strong", {}, "Someone else saved this app while you were editing it. "),
      "Your changes are not saved. Load their version (your changes on this page are dropped), or save yours over theirs.",
      h("div", { class: "actions" }, reload, overwrite)));
    reload.focus();
  };

  form.addEventListener("submit", busy(save, () => saveWith(state.etag)));
  undo.addEventListener("click", busy(undo, async () => {
    state.dirty = false;
    await show(main, appId);
  }));

  const links = [h("a", { class: "button", href: appHref(app, "/prompts") }, "Messages")];
  if (app.app_type !== "sysprompt") links.push(h("a", { class: "button", href: `#/try/${encodeURIComponent(app.app_id)}` }, "Try a call"));
  if (app.app_type === "mailbox") links.push(h("a", { class: "button", href: `#/voicemail/${encodeURIComponent(app.app_id)}` }, "Voicemail"));
  form.append(conflictBox, problemsBox, h("div", { class: "savebar" }, save, undo, stateText));
  const info = h("p", { class: "meta" }, h("span", { class: `badge ${app.app_type}` }, appKind(app)),
    app.shortcode && app.app_type !== "sysprompt" ? h("span", {}, "Dial ", h("code", {}, app.shortcode)) : null,
    app.app_type !== "sysprompt" ? h("span", {}, "SIP ", h("code", {}, app.sip_address || "")) : null);
  put(main,
    h("p", { class: "crumbs" }, h("a", { href: "#/apps" }, "Voice apps"), " › ", app.name),
    heading(app.name, ...links), info,
    app.app_type === "ivr" ? h("div", { class: "editor" }, form, side) : form);
}

function nameAndVoice(app, ctx, withVoice = true) {
  const name = h("input", { type: "text", name: "name", value: app.name || "", maxlength: "100", required: true });
  const parts = [field("Name", name)];
  let voice = null;
  if (withVoice) {
    voice = select(voiceOptions(ctx.voices), app.voice || "en", { name: "voice" });
    parts.push(field("Voice", voice, "Who reads the standard messages. Recorded messages play as recorded."));
  }
  return { parts, name, voice };
}

function numberInput(name, value, min, max, step = "1") {
  return h("input", { type: "number", name, value: value ?? "", min, max, step, inputmode: "numeric" });
}

function ivrForm(form, app, ctx, side, collectAll) {
  const { parts, name, voice } = nameAndVoice(app, ctx);
  const welcome = checkbox("Play the welcome message first", app.play_welcome !== "no", { name: "play_welcome" });
  const menuOn = checkbox("Play the menu and listen for keys", app.play_menu !== "no", { name: "play_menu" });
  const ext = checkbox("Callers may dial a person's extension", app.get_extension === "yes", { name: "get_extension" });
  const pickers = {};
  const onChange = () => form.dispatchEvent(new Event("change"));
  const keyRows = [];
  for (const [key, label] of KEY_ROWS) {
    const picker = actionPicker(app.menu?.[key], ctx, { what: `Key ${label}`, name: key, selfId: app.app_id, onChange });
    pickers[key] = picker;
    keyRows.push(h("div", { class: "key-row", dataset: { key } }, h("span", { class: "key", "aria-hidden": "true" }, label), picker.el));
  }
  for (const [key, label, words] of SPECIAL_ROWS) {
    const picker = actionPicker(app.menu?.[key], ctx, { what: words, name: key, selfId: app.app_id, onChange });
    pickers[key] = picker;
    keyRows.push(h("div", { class: "key-row", dataset: { key } }, h("span", { class: "key word", title: words, "aria-hidden": "true" }, label), picker.el));
  }
  const final = actionPicker(app.final_action, ctx, { what: "After the welcome message", name: "final_action", menu: false, selfId: app.app_id, onChange });
  const menuTimeout = numberInput("menu_timeout", app.menu_timeout, 1, 60);
  const digitTimeout = numberInput("interdigit_timeout", app.interdigit_timeout, 1, 10);
  const retries = numberInput("max_retries", app.max_retries, 0, 10);

  const keysPanel = h("section", { class: "panel", "aria-labelledby": "keys-h" },
    h("h2", { id: "keys-h" }, "Keys"), h("p", { class: "hint" }, "What happens when the caller presses each key."),
    h("div", { class: "keys" }, keyRows));
  const finalPanel = h("section", { class: "panel", "aria-labelledby": "final-h" },
    h("h2", { id: "final-h" }, "After the welcome message"),
    h("p", { class: "hint" }, "This app is an announcement: callers hear the welcome message, then this happens."),
    h("div", { class: "key-row" }, h("span", { class: "key word", "aria-hidden": "true" }, "Then"), final.el));
  const syncPanels = () => {
    keysPanel.hidden = !menuOn.input.checked;
    finalPanel.hidden = menuOn.input.checked;
  };
  menuOn.input.addEventListener("change", syncPanels);
  syncPanels();

  let hours = null;
  const hoursPanel = [];
  if (ctx.schedules) {
    const current = app.open_hours || {};
    const scheduleSelect = select([["", "Always open"], ...ctx.schedules.map((s) => [s.schedule_id, s.name || s.schedule_id])],
      current.schedule_id || "", { name: "schedule_id" });
    const closed = actionPicker(current.closed_action, ctx, { what: "When closed", name: "closed_action", menu: false, selfId: app.app_id, onChange });
    const closedRow = h("div", { class: "key-row" }, h("span", { class: "key word", "aria-hidden": "true" }, "Closed"), closed.el);
    const syncHours = () => { closedRow.hidden = !scheduleSelect.value; };
    scheduleSelect.addEventListener("change", syncHours);
    syncHours();
    hours = () => (scheduleSelect.value ? { schedule_id: scheduleSelect.value, closed_action: closed.value() } : null);
    hoursPanel.push(h("section", { class: "panel", "aria-labelledby": "hours-h" },
      h("h2", { id: "hours-h" }, "Opening hours"), field("Open", scheduleSelect), closedRow));
  }

  form.append(
    h("section", { class: "panel", "aria-labelledby": "basics-h" }, h("h2", { id: "basics-h" }, "Basics"),
      parts, welcome.wrap, menuOn.wrap, ext.wrap),
    keysPanel, finalPanel, ...hoursPanel,
    h("section", { class: "panel", "aria-labelledby": "timing-h" }, h("h2", { id: "timing-h" }, "Timing"),
      h("div", { class: "grid2" },
        field("Wait for a key (seconds)", menuTimeout, "1 to 60"),
        field("Between digits of an extension (seconds)", digitTimeout, "1 to 10"),
        field("Repeat the menu (times)", retries, "0 to 10, before the caller is told goodbye"))));

  const collect = () => {
    const menu = {};
    for (const [key, picker] of Object.entries(pickers)) menu[key] = picker.value();
    const body = {
      name: name.value.trim(),
      voice: voice.value,
      play_welcome: welcome.input.checked ? "yes" : "no",
      play_menu: menuOn.input.checked ? "yes" : "no",
      get_extension: ext.input.checked ? "yes" : "no",
      menu,
      final_action: final.value(),
    };
    const num = (el) => (el.value === "" ? undefined : Number(el.value));
    if (num(menuTimeout) !== undefined) body.menu_timeout = num(menuTimeout);
    if (num(digitTimeout) !== undefined) body.interdigit_timeout = num(digitTimeout);
    if (num(retries) !== undefined) body.max_retries = num(retries);
    if (hours) body.open_hours = hours();
    return body;
  };

  const preview = flowPreview(app, side, collectAll);
  return { collect, refreshPreview: preview };
}

/** The flow and the problems beside the IVR editor, for the draft as it is on screen. */
function flowPreview(app, side, collect) {
  const base = acct(`/voiceapp/${encodeURIComponent(app.app_id)}`);
  const flowBox = h("div", { class: "flow-box" }, h("p", { class: "loading" }, "Drawing the flow…"));
  const problemsList = h("div", { class: "problems-box", "aria-live": "polite" });
  const note = h("p", { class: "hint" });
  put(side,
    h("section", { class: "panel", "aria-labelledby": "flow-h" }, h("h2", { id: "flow-h" }, "Call flow"), note, flowBox),
    h("section", { class: "panel", "aria-labelledby": "problems-h" }, h("h2", { id: "problems-h" }, "Problems"), problemsList));
  let timer = null;
  let generation = 0;
  let drafts = true; // this server can check a draft (POST); older ones only the saved app

  const run = async () => {
    const mine = ++generation;
    let graph;
    let report;
    try {
      if (drafts) {
        const body = collect();
        try {
          [graph, report] = await Promise.all([
            api("POST", `${base}/graph`, { json: body }), api("POST", `${base}/validate`, { json: body }),
          ]);
          note.textContent = "As it is on screen, saved or not.";
        } catch (error) {
          if (!(error instanceof ApiError) || (error.status !== 404 && error.status !== 405)) throw error;
          drafts = false;
        }
      }
      if (!drafts) {
        [graph, report] = await Promise.all([api("GET", `${base}/graph`), api("GET", `${base}/validate`)]);
        note.textContent = "As last saved.";
      }
    } catch (error) {
      if (mine !== generation) return;
      const detail = describe(error);
      const named = /^([\w.]+): (.*)$/.exec(detail);
      put(problemsList, h("ul", { class: "problems" }, h("li", { class: "error", dataset: { field: named ? named[1] : "" } },
        h("strong", {}, "Cannot be saved yet"),
        named && fieldWords(named[1]) !== named[1] ? ` — ${fieldWords(named[1])}: ${detail}` : `: ${detail}`)));
      return;
    }
    if (mine !== generation) return;
    put(flowBox, drawFlow(graph.data));
    const problems = report.data.problems || [];
    put(problemsList, problems.length
      ? h("ul", { class: "problems" }, problems.map((p) => h("li", { class: p.severity, dataset: { field: p.field || "" } },
        h("strong", {}, p.severity === "error" ? "Problem" : p.severity === "warning" ? "Warning" : "Note"),
        p.field ? ` — ${fieldWords(p.field)}: ` : ": ", p.detail)))
      : h("p", { class: "alert ok" }, "No problems found: every key leads somewhere a caller can get to."));
  };
  const refresh = (now = false) => {
    clearTimeout(timer);
    timer = setTimeout(run, now ? 0 : 400);
  };
  refresh(true);
  return refresh;
}

function mailboxForm(form, app, ctx) {
  const { parts, name, voice } = nameAndVoice(app, ctx);
  const greeting = checkbox("Play the greeting before the beep", app.greeting_prompt !== "no", { name: "greeting_prompt" });
  const goodbye = checkbox("Say goodbye after the message", app.goodbye_prompt !== "no", { name: "goodbye_prompt" });
  const deliverTo = select([["", "Keep them here only"], ["email", "An e-mail address"], ["user", "A person of this account"]],
    app.deliver_to || "", { name: "deliver_to" });
  const email = h("input", { type: "email", name: "deliver_email", value: app.deliver_to === "email" ? app.deliver_to_details : "", placeholder: "reception@example.com" });
  const users = select(ctx.users.map((u) => [u.user_id, `${userName(u)} <${u.email}>`]),
    app.deliver_to === "user" ? String(app.deliver_to_details) : "", { name: "deliver_user" });
  const emailField = field("E-mail address", email);
  const userField = field("Person", users, "Messages go to this person's e-mail address.");
  const sync = () => {
    emailField.hidden = deliverTo.value !== "email";
    userField.hidden = deliverTo.value !== "user";
  };
  deliverTo.addEventListener("change", sync);
  sync();
  const maxSeconds = numberInput("max_message_seconds", app.max_message_seconds, 5, 3600);
  const maxMessages = numberInput("max_messages", app.max_messages, 1, 10000);
  const webhook = h("input", { type: "url", name: "webhook_url", value: app.webhook_url || "", placeholder: "https://example.com/voicemail" });
  form.append(
    h("section", { class: "panel", "aria-labelledby": "basics-h" }, h("h2", { id: "basics-h" }, "Basics"), parts, greeting.wrap, goodbye.wrap),
    h("section", { class: "panel", "aria-labelledby": "deliver-h" }, h("h2", { id: "deliver-h" }, "Where messages go"),
      field("Send each message to", deliverTo), emailField, userField,
      field("Web address to notify (optional)", webhook, "OpenIVR posts each new message here as JSON.")),
    h("section", { class: "panel", "aria-labelledby": "limits-h" }, h("h2", { id: "limits-h" }, "Limits"),
      h("div", { class: "grid2" },
        field("Longest message (seconds)", maxSeconds, "5 to 3600"),
        field("Messages kept at most", maxMessages, "When full, callers are told the box cannot take messages"))));
  return () => {
    const body = {
      name: name.value.trim(), voice: voice.value,
      greeting_prompt: greeting.input.checked ? "yes" : "no",
      goodbye_prompt: goodbye.input.checked ? "yes" : "no",
      deliver_to: deliverTo.value,
      deliver_to_details: deliverTo.value === "email" ? email.value.trim() : deliverTo.value === "user" ? users.value : "",
      webhook_url: webhook.value.trim(),
    };
    if (maxSeconds.value !== "") body.max_message_seconds = Number(maxSeconds.value);
    if (maxMessages.value !== "") body.max_messages = Number(maxMessages.value);
    return body;
  };
}

function syspromptForm(form, app, ctx) {
  const { parts, name } = nameAndVoice(app, ctx, false);
  const options = voiceOptions(ctx.voices);
  const voices = [
    ["voice", "Voice of system messages", "Goodbye, please wait and other messages of the account."],
    ["error_voice", "Voice of “not a valid option”", "When a caller presses a key that is not in use, or nothing."],
    ["error_repeat_voice", "Voice when the error repeats", "From the second error on."],
    ["usermailbox_voice", "Voice of “cannot take messages”", "When a voicemail box is full."],
  ].map(([key, label, hint]) => [key, field(label, select(options, app[key] || "en", { name: key }), hint)]);
  form.append(h("section", { class: "panel", "aria-labelledby": "basics-h" }, h("h2", { id: "basics-h" }, "System messages"),
    h("p", { class: "hint" }, "The messages OpenIVR itself says. Record your own under Messages."),
    parts, voices.map(([, el]) => el)));
  return () => {
    const body = { name: name.value.trim() };
    for (const [key] of voices) body[key] = form.querySelector(`select[name=${key}]`).value;
    return body;
  };
}
