// Try a call: run the call engine on the saved apps with simulated time — what the caller
// hears, key by key — and play the audio of the whole call.

import { h, put, field, select, seconds, uid } from "../dom.js";
import { api, acct, list } from "../api.js";
import { appKind, serverFeatures, userName } from "../data.js";
import { heading, busy, describe } from "../ui.js";

const STEP_KINDS = [["key", "Press a key"], ["record", "Speak a message (seconds)"], ["transfer", "The transfer is…"], ["hangup", "Hang up"]];
// With teams: who picks up when the next team rings (or nobody).
const TEAM_STEP = ["team", "The team's call is answered by…"];
const TRANSFER_RESULTS = [["answered", "answered"], ["busy", "busy"], ["no_answer", "not answered"], ["unreachable", "unreachable"]];
const KIND_WORDS = { app: "App", prompt: "Plays", key: "Key", recording: "Records", transfer: "Transfer", hangup: "End", note: "Note", timeout: "Wait", ringback: "Rings", hours: "Hours" };
let lastAudioUrl = null;

export async function show(main, appId) {
  document.title = "Try a call — OpenIVR";
  const features = await serverFeatures();
  const [allApps, users] = await Promise.all([list(acct("/voiceapp")), features.teams ? list(acct("/user")) : Promise.resolve(null)]);
  const apps = allApps.filter((a) => a.app_type !== "sysprompt");
  const byId = Object.fromEntries(apps.map((a) => [a.app_id, a]));
  const chosen = apps.find((a) => a.app_id === appId) || apps[0];
  const appSelect = select(apps.map((a) => [a.app_id, `${a.name} (${appKind(a).toLowerCase()})`]), chosen ? chosen.app_id : "", { name: "app" });
  const caller = h("input", { type: "tel", name: "caller", placeholder: "+46701234567", autocomplete: "off" });
  const keys = h("input", { type: "text", name: "keys", placeholder: "e.g. 2 or 1#", pattern: "[0-9*#]*", inputmode: "tel", autocomplete: "off" });
  // When the call is made, in this browser's time (opening hours are decided from it).
  const at = features.schedules ? h("input", { type: "datetime-local", name: "at", step: "60" }) : null;
  const steps = h("div", { class: "steps", "aria-label": "Timeline" });
  const addStep = h("button", { type: "button", name: "add_step" }, "Add a step");
  const run = h("button", { type: "submit", class: "primary", name: "run" }, "Run the call");
  const result = h("section", { class: "result", "aria-live": "polite", "aria-labelledby": "result-h" });
  const form = h("form", { class: "panel", "aria-label": "The call to try" },
    h("div", { class: "row" }, field("Call", appSelect), field("Caller's number (optional)", caller)),
    at ? field("When (your time)", at, "Empty: now. Opening hours are decided for this moment.") : null,
    field("Keys the caller presses", keys, "Each key is pressed as soon as the caller may: when the message before it ends."),
    h("details", { class: "timeline" }, h("summary", {}, "Or build a timeline step by step"),
      h("p", { class: "hint" }, "Steps happen in order and replace the keys above. A key or a hang-up happens once nothing plays (after that many seconds), "
        + "while a message plays (named by its key such as menu, or its name; that many seconds into it), or at a second of the call, whatever plays then."),
      steps, addStep, h("datalist", { id: "step-messages" }, MESSAGES.map((m) => h("option", { value: m })))),
    h("div", { class: "row" }, run));
  addStep.addEventListener("click", () => {
    const row = stepRow(() => row.remove(), users);
    steps.appendChild(row);
    row.querySelector("select").focus();
  });
  form.addEventListener("submit", busy(run, () => runCall(appSelect.value, caller.value.trim(), keys.value.trim(), steps, result, byId, at ? at.value : "")));
  put(main,
    heading("Try a call"),
    h("p", { class: "lead" }, "See and hear what a caller would, before a phone rings. The call runs on the saved settings; nothing is recorded and no one is rung."),
    apps.length ? form : h("p", { class: "empty" }, "There is no app to call yet."), result);
}

// When a key or a hang-up happens (the API's `after`, `during` and `at`).
const WHEN = [["after", "Once nothing plays"], ["during", "While a message plays"], ["at", "At a second of the call"]];
// Standard messages a `during` may name besides a prompt's own name.
const MESSAGES = ["welcome", "menu", "please_wait", "greeting", "invalid_option", "no_input", "closed", "goodbye"];

function stepRow(remove, users) {
  const kind = select(users ? [...STEP_KINDS, TEAM_STEP] : STEP_KINDS, "key", { name: "step_kind", id: uid("kind") });
  const value = h("div", { class: "field" });
  const when = select(WHEN, "after", { name: "step_when", id: uid("when") });
  const whenField = h("div", { class: "field" }, h("label", { for: when.id }, "When"), when);
  const after = h("input", { type: "number", name: "step_after", min: "0", step: "0.5", placeholder: "0", id: uid("after") });
  const afterLabel = h("label", { for: after.id }, "After (seconds)");
  const during = h("input", { type: "text", name: "step_during", list: "step-messages", placeholder: "menu", id: uid("during"), autocomplete: "off" });
  const duringField = h("div", { class: "field" }, h("label", { for: during.id }, "Message"), during);
  const at = h("input", { type: "number", name: "step_at", min: "0", step: "0.1", value: "0", id: uid("at") });
  const atField = h("div", { class: "field" }, h("label", { for: at.id }, "Second of the call"), at);
  const afterField = h("div", { class: "field" }, afterLabel, after);
  const timing = h("div", { class: "step-when" }, duringField, afterField, atField);
  let control = null;
  const timed = () => kind.value === "key" || kind.value === "hangup";
  const showWhen = () => {
    const how = timed() ? when.value : "after";
    whenField.hidden = !timed();
    duringField.hidden = how !== "during";
    atField.hidden = how !== "at";
    afterField.hidden = how === "at" || kind.value === "record";
    afterLabel.textContent = how === "during" ? "Seconds into it" : "After (seconds)";
    after.placeholder = how === "during" ? "half way" : "0";
  };
  const build = () => {
    value.replaceChildren();
    const id = uid("step");
    if (kind.value === "key") {
      control = h("input", { type: "text", name: "step_key", maxlength: "1", pattern: "[0-9*#]", id, inputmode: "tel", required: true });
      value.append(h("label", { for: id }, "Key"), control);
    } else if (kind.value === "record") {
      control = h("input", { type: "number", name: "step_record", min: "1", max: "600", value: "5", id });
      value.append(h("label", { for: id }, "Seconds"), control);
    } else if (kind.value === "transfer") {
      control = select(TRANSFER_RESULTS, "answered", { name: "step_transfer", id });
      value.append(h("label", { for: id }, "Result"), control);
    } else if (kind.value === "team") {
      control = select([["nobody", "Nobody"], ...users.map((u) => [u.user_id, userName(u)])], "nobody", { name: "step_team", id });
      value.append(h("label", { for: id }, "Who"), control);
    } else {
      control = null;
    }
    showWhen();
  };
  kind.addEventListener("change", build);
  when.addEventListener("change", showWhen);
  build();
  const row = h("div", { class: "step" }, h("div", { class: "field" }, h("label", { for: kind.id }, "The caller"), kind), value, whenField, timing,
    h("button", { type: "button", class: "link", onclick: remove, "aria-label": "Remove this step" }, "Remove"));
  row.toStep = () => {
    const step = {};
    if (kind.value === "key") step.key = control.value.trim();
    else if (kind.value === "record") return { record: Number(control.value || 5) };
    else if (kind.value === "transfer") step.transfer = control.value;
    else if (kind.value === "team") step.team = control.value;
    else step.hangup = true;
    const how = timed() ? when.value : "after";
    // What the user typed goes as it is: the server names what is wrong with it.
    if (how === "at") step.at = Number(at.value || 0);
    else if (how === "during") step.during = during.value.trim();
    if (how !== "at" && after.value !== "") step.after = Number(after.value);
    return step;
  };
  return row;
}

// The server names a bad step as timeline[i]: the row it came from is marked and focused.
function markStep(rows, error) {
  const found = /^timeline\[(\d+)\](?:\.(\w+))?/.exec((error && error.detail) || "");
  const row = found ? rows[Number(found[1])] : null;
  if (!row) return;
  row.classList.add("invalid");
  row.setAttribute("aria-invalid", "true");
  const control = (found[2] && row.querySelector(`[name=step_${found[2]}]`)) || row.querySelector("select");
  control.focus();
}

function entryText(e, apps) {
  if (e.kind === "app" && apps[e.app_id]) {
    const app = apps[e.app_id];
    return `“${app.name}” (${appKind(app).toLowerCase()}) answers`;
  }
  if (e.kind === "key" && e.digit !== undefined) {
    return `The caller presses ${e.digit}${/invalid/.test(e.text) ? " (not a key in use)" : ""}`;
  }
  if (e.kind === "prompt") {
    const said = e.prompt_text ? ` “${e.prompt_text}”` : "";
    return `${e.name || "Message"}${said}${e.interrupted ? " (cut short)" : ""}`;
  }
  return e.text;
}

function outcomeWords(t) {
  const o = t.outcome || {};
  const length = seconds(t.total_seconds);
  if (o.kind === "voicemail") return `The caller left a voicemail of ${seconds(o.voicemail_seconds)}. The call took ${length}.`;
  if (o.kind === "transferred" || o.kind === "transfer") return `The call was put through${o.target ? ` to ${o.target}` : ""} after ${length}.`;
  if (o.kind === "hangup") return `The call ended after ${length}.`;
  return `${o.kind || "The call ended"} after ${length}.`;
}

async function runCall(appId, caller, keys, steps, result, apps, at) {
  const body = {};
  if (caller) body.caller = caller;
  if (at) body.at = new Date(at).toISOString(); // the browser's local time, as an instant
  const rows = [...steps.children].filter((r) => r.toStep);
  for (const r of rows) {
    r.classList.remove("invalid");
    r.removeAttribute("aria-invalid");
  }
  if (rows.length) body.timeline = rows.map((r) => r.toStep());
  else body.keys = keys;
  const path = acct(`/voiceapp/${encodeURIComponent(appId)}/simulate`);
  put(result, h("p", { class: "loading" }, "Running the call…"));
  let transcript;
  try {
    ({ data: transcript } = await api("POST", path, { json: body }));
  } catch (error) {
    put(result, h("p", { class: "alert error", role: "alert" }, "The call could not run: ", describe(error)));
    markStep(rows, error);
    return;
  }
  const hear = h("button", { type: "button", name: "hear" }, "Hear the call");
  const audioBox = h("div", { class: "call-audio" });
  hear.addEventListener("click", busy(hear, async () => {
    try {
      const { data: blob } = await api("POST", path, { json: body, query: { format: "wav" }, blob: true });
      if (lastAudioUrl) URL.revokeObjectURL(lastAudioUrl);
      lastAudioUrl = URL.createObjectURL(blob);
      const audio = h("audio", { controls: true, src: lastAudioUrl, "aria-label": "What the caller hears" });
      put(audioBox, audio);
      audio.play().catch(() => {});
    } catch (error) {
      put(audioBox, h("p", { class: "alert error", role: "alert" }, describe(error)));
    }
  }));
  const entries = transcript.entries || [];
  put(result,
    h("h2", { id: "result-h" }, "What happened"),
    h("p", { class: "alert info outcome" }, outcomeWords(transcript)),
    transcript.stalled || transcript.truncated ? h("p", { class: "alert warn" }, "The call was stopped early: it ran too long.") : null,
    transcript.unused_steps ? h("p", { class: "alert warn" }, `${transcript.unused_steps} step(s) of the timeline were not used.`) : null,
    h("div", { class: "row" }, hear), audioBox,
    h("ol", { class: "transcript panel" }, entries.map((e) => h("li", { class: `entry-${e.kind}` },
      h("span", { class: "at" }, `${Number(e.at).toFixed(1)} s`),
      h("span", {}, h("span", { class: "kind" }, KIND_WORDS[e.kind] || e.kind), entryText(e, apps))))));
}
