// Teams: people rung together or in turn for one menu key ("press 1 for sales").

import { h, put, field, select } from "../dom.js";
import { api, acct, ApiError } from "../api.js";
import { accountData, promptsOf, userName } from "../data.js";
import { actionPicker } from "../actions.js";
import { toast, showError, heading, busy, describe, dialog, formDialog, confirmAction, conflictError } from "../ui.js";

const STRATEGIES = [
  ["all", "Ring everyone at once"],
  ["order", "One after another, in this order"],
  ["rotate", "Take turns (start after whoever answered last)"],
];

export async function show(main) {
  document.title = "Teams — OpenIVR";
  const ctx = await accountData();
  ctx.prompts = await promptsOf(ctx.apps.filter((a) => a.app_type !== "sysprompt"));
  const problems = h("div", { hidden: true });
  const reload = () => show(main);
  const names = Object.fromEntries(ctx.users.map((u) => [u.user_id, userName(u)]));
  const add = h("button", { type: "button", class: "primary", name: "add_team" }, "Add a team");
  add.addEventListener("click", busy(add, async () => {
    if (await teamDialog(null, ctx)) { toast("Team added."); await reload(); }
  }));
  const cards = (ctx.teams || []).map((t) => {
    const edit = h("button", { type: "button", name: "edit" }, "Change");
    edit.addEventListener("click", busy(edit, async () => {
      if (await teamDialog(t, ctx)) { toast(`Saved ${t.name}.`); await reload(); }
    }));
    const del = h("button", { type: "button", name: "delete", class: "danger-text" }, "Delete");
    del.addEventListener("click", busy(del, () => removeTeam(t, problems, reload)));
    const strategy = (STRATEGIES.find(([s]) => s === t.strategy) || [t.strategy, t.strategy])[1];
    return h("li", { class: "card", dataset: { teamId: t.team_id } },
      h("div", { class: "card-main" }, h("h2", { class: "card-title" }, t.name),
        h("p", { class: "meta" }, h("span", {}, `${strategy} · ${t.ring_seconds} s each, ${t.max_seconds} s in all`)),
        h("p", { class: "members" }, (t.members || []).length ? (t.members || []).map((id) => names[id] || id).join(", ") : h("span", { class: "hint" }, "Nobody yet"))),
      h("div", { class: "card-actions" }, edit, del));
  });
  put(main, heading("Teams", add),
    h("p", { class: "lead" }, "People who answer calls together. A menu key or a number can ring a team."),
    problems, cards.length ? h("ul", { class: "cards" }, cards) : h("p", { class: "empty" }, "No teams yet."));
}

async function teamDialog(team, ctx) {
  let etag = null;
  let current = team;
  if (team) {
    const answer = await api("GET", acct(`/team/${encodeURIComponent(team.team_id)}`));
    current = answer.data;
    etag = answer.etag;
  }
  const name = h("input", { type: "text", name: "team_name", value: current ? current.name : "", required: true });
  const strategy = select(STRATEGIES, current ? current.strategy : "all", { name: "strategy" });
  const ring = h("input", { type: "number", name: "ring_seconds", min: "5", max: "300", value: current ? current.ring_seconds : 20 });
  const max = h("input", { type: "number", name: "max_seconds", min: "5", max: "3600", value: current ? current.max_seconds : 60 });
  const members = [...((current && current.members) || [])];
  const list = h("ol", { class: "member-list" });
  const adder = h("select", { name: "add_member", "aria-label": "Add a person" });
  const draw = () => {
    put(list, members.map((id, i) => {
      const user = ctx.users.find((u) => u.user_id === id);
      const label = user ? userName(user) : id;
      return h("li", {}, h("span", {}, label),
        h("span", { class: "member-actions" },
          h("button", { type: "button", class: "link", disabled: i === 0, "aria-label": `Move ${label} up`, onclick: () => { members.splice(i - 1, 0, members.splice(i, 1)[0]); draw(); } }, "Up"),
          h("button", { type: "button", class: "link", disabled: i === members.length - 1, "aria-label": `Move ${label} down`, onclick: () => { members.splice(i + 1, 0, members.splice(i, 1)[0]); draw(); } }, "Down"),
          h("button", { type: "button", class: "link", "aria-label": `Remove ${label}`, onclick: () => { members.splice(i, 1); draw(); } }, "Remove")));
    }));
    put(adder, h("option", { value: "" }, "Add a person…"),
      ctx.users.filter((u) => !members.includes(u.user_id)).map((u) => h("option", { value: u.user_id }, userName(u))));
  };
  adder.addEventListener("change", () => { if (adder.value) { members.push(adder.value); draw(); adder.focus(); } });
  draw();
  const noAnswer = actionPicker(current ? current.no_answer : null, ctx, { what: "When nobody answers", name: "no_answer", menu: false });
  const body = h("div", {}, field("Name", name), field("How members are rung", strategy),
    h("div", { class: "field" }, h("span", { class: "label" }, "Members"), list, adder),
    h("div", { class: "grid2" }, field("Ring each (seconds)", ring), field("Ring the team at most (seconds)", max)),
    h("div", { class: "field" }, h("span", { class: "label" }, "When nobody answers"), h("div", { class: "key-row single" }, noAnswer.el),
      h("p", { class: "hint" }, "Nothing: the caller hears “unavailable” and goes back to the menu.")));
  // "Load their version" after a conflict closes this dialog and opens their team afresh.
  let conflict = null;
  const saved = await formDialog(team ? `Change ${team.name}` : "Add a team", body, team ? "Save" : "Add", async () => {
    const data = {
      name: name.value.trim(), strategy: strategy.value, members,
      ring_seconds: Number(ring.value), max_seconds: Number(max.value), no_answer: noAnswer.value(),
    };
    try {
      if (team) await api("PUT", acct(`/team/${encodeURIComponent(team.team_id)}`), { json: data, ifMatch: etag });
      else await api("POST", acct("/team"), { json: data });
    } catch (error) {
      if (error instanceof ApiError && error.status === 412) {
        conflict = conflictError("Someone else changed this team after you opened it.");
        throw conflict;
      }
      throw error;
    }
  });
  return conflict && conflict.chosen() ? teamDialog(team, ctx) : saved;
}

async function removeTeam(t, problems, reload) {
  if (!(await confirmAction(`Delete ${t.name}?`, "Keys and numbers that ring this team will lead nowhere."))) return;
  const path = acct(`/team/${encodeURIComponent(t.team_id)}`);
  try {
    await api("DELETE", path);
  } catch (error) {
    if (!(error instanceof ApiError) || error.code !== "in_use") {
      showError(problems, error, "Not deleted:");
      return;
    }
    const answer = await dialog(`${t.name} is still in use`,
      h("div", {}, h("p", { class: "alert warn" }, describe(error)), h("p", {}, "Delete anyway?")),
      [{ label: "Keep", value: false }, { label: "Delete anyway", value: true, class: "danger" }]);
    if (answer !== true) return;
    try {
      await api("DELETE", path, { query: { force: "true" } });
    } catch (again) {
      showError(problems, again, "Not deleted:");
      return;
    }
  }
  toast(`Deleted ${t.name}.`);
  await reload();
}
