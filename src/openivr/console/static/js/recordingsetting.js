// Which calls the account records (`call_recording` of the account; with `selected`, the
// numbers and users whose `record_calls` is yes), on the recordings page of an admin.

import { h, put, field, select, checkbox } from "./dom.js";
import { api, acct, list } from "./api.js";
import { userName } from "./data.js";
import { toast, showError, busy } from "./ui.js";

const MODES = [
  ["off", "No calls"],
  ["all", "Every call"],
  ["inbound", "Calls to the account (incoming)"],
  ["outbound", "Calls the account places (callbacks)"],
  ["selected", "Calls of the numbers and people chosen here"],
];

/** The panel: the account's choice, changed with Save; its summary says the current one. */
export async function recordingSetting() {
  const [{ data: account }, numbers, users] = await Promise.all([
    api("GET", acct()), list(acct("/phonenumbersubscription")), list(acct("/user")),
  ]);
  const words = (mode) => (MODES.find(([m]) => m === mode) || [mode, mode])[1];
  const summary = h("summary", {}, `Calls recorded: ${words(account.call_recording)}`);
  const mode = select(MODES, account.call_recording, { name: "call_recording" });
  const chosen = (items, name, key, label) => items.map((item) => {
    const box = checkbox(label(item), item.record_calls === "yes", { name, value: item[key] });
    box.input.dataset.was = item.record_calls;
    return box.wrap;
  });
  const which = h("fieldset", { class: "recorded-which" }, h("legend", {}, "Record the calls of"),
    numbers.length ? chosen(numbers, "record_number", "phnum", (n) => `the number ${n.phnum}`) : null,
    chosen(users, "record_user", "user_id", (u) => `${userName(u)} (user)`));
  const showWhich = () => { which.hidden = mode.value !== "selected"; };
  mode.addEventListener("change", showWhich);
  showWhich();
  const problems = h("div", { hidden: true });
  const save = h("button", { type: "submit", class: "primary", name: "save_recording" }, "Save");
  const form = h("form", { "aria-label": "Which calls are recorded" },
    h("div", { class: "row" }, field("Record", mode), h("div", { class: "field end" }, save)), which, problems);
  form.addEventListener("submit", busy(save, async () => {
    put(problems);
    problems.hidden = true;
    try {
      // The numbers and people first: `selected` then starts with the right ones.
      for (const input of which.querySelectorAll("input[type=checkbox]")) {
        const now = input.checked ? "yes" : "no";
        if (now === input.dataset.was) continue;
        const path = input.name === "record_number"
          ? acct(`/phonenumbersubscription/${encodeURIComponent(input.value)}`)
          : acct(`/user/${encodeURIComponent(input.value)}`);
        await api("PUT", path, { json: { record_calls: now } });
        input.dataset.was = now;
      }
      if (mode.value !== account.call_recording) {
        await api("PUT", acct(), { json: { call_recording: mode.value } });
        account.call_recording = mode.value;
      }
      summary.textContent = `Calls recorded: ${words(account.call_recording)}`;
      toast("Saved which calls are recorded.");
    } catch (error) {
      showError(problems, error, "Not saved:");
    }
  }));
  return h("details", { class: "panel recording-setting", open: account.call_recording === "off" }, summary, form);
}
