// Opening hours: weekly hours, holidays and special days, in a time zone. A menu's
// "Opening hours" picks one and says what callers get while closed.

import { h, put, field, uid } from "../dom.js";
import { api, acct, list, ApiError } from "../api.js";
import { toast, showError, heading, busy, describe, dialog, formDialog, confirmAction, conflictError } from "../ui.js";
import { specialDaysEditor, rowsOf, rowWords } from "../specialdays.js";

const DAYS = [["mon", "Mon"], ["tue", "Tue"], ["wed", "Wed"], ["thu", "Thu"], ["fri", "Fri"], ["sat", "Sat"], ["sun", "Sun"]];

function weeklyWords(weekly) {
  if (!weekly || !weekly.length) return "Never open";
  return weekly.map((w) => `${(w.days || []).map((d) => (DAYS.find(([k]) => k === d) || [d, d])[1]).join(", ")} ${w.from}–${w.to}`).join("; ");
}

export async function show(main) {
  document.title = "Opening hours — OpenIVR";
  const schedules = await list(acct("/schedule"));
  const problems = h("div", { hidden: true });
  const reload = () => show(main);
  const add = h("button", { type: "button", class: "primary", name: "add_schedule" }, "Add opening hours");
  add.addEventListener("click", busy(add, async () => {
    if (await scheduleDialog(null)) { toast("Opening hours added."); await reload(); }
  }));
  const cards = schedules.map((s) => {
    const edit = h("button", { type: "button", name: "edit" }, "Change");
    edit.addEventListener("click", busy(edit, async () => {
      if (await scheduleDialog(s)) { toast(`Saved ${s.name}.`); await reload(); }
    }));
    const del = h("button", { type: "button", name: "delete", class: "danger-text" }, "Delete");
    del.addEventListener("click", busy(del, () => removeSchedule(s, problems, reload)));
    return h("li", { class: "card", dataset: { scheduleId: s.schedule_id } },
      h("div", { class: "card-main" }, h("h2", { class: "card-title" }, s.name),
        h("p", { class: "meta" }, h("span", {}, s.timezone)),
        h("p", {}, weeklyWords(s.weekly)),
        specialList(s)),
      h("div", { class: "card-actions" }, edit, del));
  });
  put(main, heading("Opening hours", add),
    h("p", { class: "lead" }, "When the line is open. Choose them in a menu's settings, with what callers hear while you are closed."),
    problems, cards.length ? h("ul", { class: "cards" }, cards) : h("p", { class: "empty" }, "No opening hours yet."));
}

/** The schedule's holidays and special days, a line each, on its card. */
function specialList(schedule) {
  const rows = rowsOf(schedule);
  if (!rows.length) return null;
  return h("div", { class: "special-list" }, h("h3", {}, "Holidays and special days"),
    h("ul", {}, rows.map((r) => h("li", { class: r.kind }, rowWords(r)))));
}

function timeInput(name, value, label) {
  return h("input", { type: "time", name, value: value || "", "aria-label": label, required: true });
}

async function scheduleDialog(schedule) {
  let etag = null;
  let current = schedule;
  if (schedule) {
    const answer = await api("GET", acct(`/schedule/${encodeURIComponent(schedule.schedule_id)}`));
    current = answer.data;
    etag = answer.etag;
  }
  const name = h("input", { type: "text", name: "schedule_name", value: current ? current.name : "", required: true });
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const zoneList = uid("zones");
  const timezone = h("input", { type: "text", name: "timezone", list: zoneList, value: current ? current.timezone : "", placeholder: "Europe/Stockholm (empty: the account's)" });
  const weeklyBox = h("div", { class: "weekly" });
  const addWeekly = (w = { days: ["mon", "tue", "wed", "thu", "fri"], from: "09:00", to: "17:00" }) => {
    const row = h("fieldset", { class: "weekly-row" }, h("legend", {}, "Open on"),
      h("div", { class: "days" }, DAYS.map(([key, label]) => {
        const id = uid("day");
        return h("span", { class: "day" }, h("input", { type: "checkbox", id, value: key, checked: (w.days || []).includes(key) }), h("label", { for: id }, label));
      })),
      h("div", { class: "row" }, field("From", timeInput("from", w.from, "From")), field("To", timeInput("to", w.to, "To")),
        h("div", { class: "field end" }, h("button", { type: "button", class: "link", onclick: () => row.remove() }, "Remove these hours"))));
    weeklyBox.appendChild(row);
  };
  for (const w of (current ? current.weekly : null) || [undefined]) addWeekly(w);
  const special = specialDaysEditor(current);
  const body = h("div", {}, field("Name", name), field("Time zone", timezone), h("datalist", { id: zoneList }, zones.map((z) => h("option", { value: z }))),
    h("div", { class: "field" }, h("span", { class: "label" }, "Weekly hours"), weeklyBox,
      h("button", { type: "button", name: "add_hours", onclick: () => addWeekly({ days: [], from: "", to: "" }) }, "Add hours")),
    special.element);
  // "Load their version" after a conflict closes this dialog and opens their hours afresh.
  let conflict = null;
  const saved = await formDialog(schedule ? `Change ${schedule.name}` : "Add opening hours", body, schedule ? "Save" : "Add", async () => {
    const weekly = [...weeklyBox.querySelectorAll(".weekly-row")].map((row) => ({
      days: [...row.querySelectorAll(".days input:checked")].map((i) => i.value),
      from: row.querySelector("input[name=from]").value,
      to: row.querySelector("input[name=to]").value,
    }));
    const data = { name: name.value.trim(), weekly, ...special.collect() };
    if (timezone.value.trim()) data.timezone = timezone.value.trim();
    try {
      if (schedule) await api("PUT", acct(`/schedule/${encodeURIComponent(schedule.schedule_id)}`), { json: data, ifMatch: etag });
      else await api("POST", acct("/schedule"), { json: data });
    } catch (error) {
      if (error instanceof ApiError && error.status === 412) {
        conflict = conflictError("Someone else changed these hours after you opened them.");
        throw conflict;
      }
      if (error instanceof ApiError && error.status === 400) throw new Error(special.blame(describe(error)));
      throw error;
    }
  });
  return conflict && conflict.chosen() ? scheduleDialog(schedule) : saved;
}

async function removeSchedule(s, problems, reload) {
  if (!(await confirmAction(`Delete ${s.name}?`, "Menus that use these hours will be open all the time."))) return;
  const path = acct(`/schedule/${encodeURIComponent(s.schedule_id)}`);
  try {
    await api("DELETE", path);
  } catch (error) {
    if (!(error instanceof ApiError) || error.code !== "in_use") {
      showError(problems, error, "Not deleted:");
      return;
    }
    const answer = await dialog(`${s.name} is still in use`,
      h("div", {}, h("p", { class: "alert warn" }, describe(error)), h("p", {}, "Delete anyway? Those menus will then be open all the time.")),
      [{ label: "Keep", value: false }, { label: "Delete anyway", value: true, class: "danger" }]);
    if (answer !== true) return;
    try {
      await api("DELETE", path, { query: { force: "true" } });
    } catch (again) {
      showError(problems, again, "Not deleted:");
      return;
    }
  }
  toast(`Deleted ${s.name}.`);
  await reload();
}
