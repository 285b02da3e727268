// Users of the account: who they are, their extension and where they are rung, the SIP
// password their desk phone registers with; add, change and delete (admins).

import { h, put, field, select } from "../dom.js";
import { api, acct, list, ApiError } from "../api.js";
import { userName } from "../data.js";
import { session } from "../session.js";
import { toast, showError, heading, busy, describe, dialog, formDialog, confirmAction } from "../ui.js";

function sipDomain(apps) {
  const withAddress = apps.find((a) => a.sip_address && a.sip_address.includes("@"));
  return withAddress ? withAddress.sip_address.split("@")[1] : "";
}

/** A password a person can read out and type into a phone. */
function newSipPassword() {
  const alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
}

export async function show(main) {
  document.title = "Users — OpenIVR";
  const [users, apps] = await Promise.all([list(acct("/user")), list(acct("/voiceapp"))]);
  const me = session();
  const domain = sipDomain(apps);
  const mine = users.find((u) => u.user_id === me.userId);
  const admin = !mine || mine.type === "admin";
  const problems = h("div", { hidden: true });
  const reload = () => show(main);

  const rows = users.map((u) => {
    const edit = h("button", { type: "button", name: "edit", "aria-label": `Change ${userName(u)}` }, "Change");
    edit.addEventListener("click", busy(edit, async () => {
      if (await userDialog(u, domain, admin)) {
        toast(`Saved ${userName(u)}.`);
        await reload();
      }
    }));
    const actions = [edit];
    if (admin && u.user_id !== me.userId) {
      const del = h("button", { type: "button", name: "delete", class: "danger-text", "aria-label": `Delete ${userName(u)}` }, "Delete");
      del.addEventListener("click", busy(del, () => removeUser(u, problems, reload)));
      actions.push(del);
    }
    const reach = [u.phnum ? `Phone ${u.phnum}` : "", u.sip_uri ? `SIP ${u.sip_uri}` : ""].filter(Boolean).join(" · ");
    return h("tr", { dataset: { userId: u.user_id } },
      h("td", { "data-label": "Name" }, h("strong", {}, userName(u)), u.type === "admin" ? h("span", { class: "badge" }, " admin") : null),
      h("td", { "data-label": "E-mail" }, u.email),
      h("td", { "data-label": "Extension" }, u.extension || "—"),
      h("td", { "data-label": "Rung at" }, reach || (u.has_sip_password ? "Their desk phone" : h("span", { class: "hint" }, "Nowhere yet"))),
      h("td", { "data-label": "Desk phone" }, u.has_sip_password
        ? h("span", {}, h("span", { class: "badge ok" }, "SIP password set"), domain ? h("div", {}, h("code", { class: "sip" }, `sip:${u.user_id}@${domain}`)) : null)
        : h("span", { class: "hint" }, "No SIP password")),
      h("td", { "data-label": "" }, h("div", { class: "card-actions" }, actions)));
  });

  const add = h("button", { type: "button", class: "primary", name: "add_user" }, "Add a user");
  add.addEventListener("click", busy(add, async () => {
    if (await userDialog(null, domain, admin)) {
      toast("User added.");
      await reload();
    }
  }));
  put(main,
    heading("Users", admin ? add : null),
    h("p", { class: "lead" }, "The people calls can be put through to. A desk phone registers with the user's SIP address and SIP password; calls to the user then ring it."),
    problems,
    h("div", { class: "table-wrap" }, h("table", { class: "stack users" },
      h("thead", {}, h("tr", {}, ["Name", "E-mail", "Extension", "Rung at", "Desk phone", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows))));
}

async function userDialog(u, domain, admin) {
  const creating = !u;
  const fname = h("input", { type: "text", name: "user_fname", value: u ? u.user_fname : "", autocomplete: "off" });
  const lname = h("input", { type: "text", name: "user_lname", value: u ? u.user_lname : "", autocomplete: "off" });
  const email = h("input", { type: "email", name: "email", value: u ? u.email : "", required: true, autocomplete: "off" });
  const password = h("input", { type: "password", name: "password", autocomplete: "new-password", minlength: "6" });
  const type = select([["regular", "Regular user"], ["admin", "Administrator"]], u ? u.type : "regular", { name: "type", disabled: !admin });
  const extension = h("input", { type: "text", name: "extension", value: u ? u.extension : "", inputmode: "numeric", placeholder: "e.g. 101" });
  const phnum = h("input", { type: "tel", name: "phnum", value: u ? u.phnum : "", placeholder: "+46701234567" });
  const sipUri = h("input", { type: "text", name: "sip_uri", value: u ? u.sip_uri : "", placeholder: "sip:anna@pbx.example.com" });
  const sipPassword = h("input", { type: "text", name: "sip_password", autocomplete: "off", spellcheck: "false" });
  const generate = h("button", { type: "button", name: "generate" }, "Make one up");
  generate.addEventListener("click", () => { sipPassword.value = newSipPassword(); sipPassword.focus(); sipPassword.select(); });
  const body = h("div", {},
    h("div", { class: "grid2" }, field("First name", fname), field("Last name", lname)),
    field("E-mail (signs in with it)", email),
    field(creating ? "Password" : "New password (leave empty to keep)", password, "At least 6 characters."),
    h("div", { class: "grid2" }, field("Kind", type), field("Extension", extension, "2 to 6 digits; empty: the next free one")),
    field("Mobile or other number", phnum, "Rung when no desk phone is registered."),
    field("SIP address", sipUri, "Rung when no desk phone is registered and no number is given."),
    h("div", { class: "subpanel" },
      h("h3", {}, "Desk phone"),
      u && domain ? h("p", { class: "hint" }, "The phone registers as ", h("code", {}, `sip:${u.user_id}@${domain}`), ".") : null,
      field(u && u.has_sip_password ? "New SIP password (leave empty to keep)" : "SIP password", sipPassword,
        "Type it into the phone's account settings. It is stored hashed and cannot be shown again."),
      generate));
  return formDialog(creating ? "Add a user" : `Change ${userName(u)}`, body, creating ? "Add" : "Save", async () => {
    const data = {
      user_fname: fname.value.trim(), user_lname: lname.value.trim(), email: email.value.trim(),
      phnum: phnum.value.trim(), sip_uri: sipUri.value.trim(),
    };
    if (admin) data.type = type.value;
    if (extension.value.trim()) data.extension = extension.value.trim();
    if (password.value) data.password = password.value;
    if (sipPassword.value) data.sip_password = sipPassword.value;
    if (creating) await api("POST", acct("/user"), { json: data });
    else await api("PUT", acct(`/user/${encodeURIComponent(u.user_id)}`), { json: data });
  });
}

async function removeUser(u, problems, reload) {
  if (!(await confirmAction(`Delete ${userName(u)}?`, "They can no longer sign in, and calls are no longer put through to them."))) return;
  const path = acct(`/user/${encodeURIComponent(u.user_id)}`);
  try {
    await api("DELETE", path);
  } catch (error) {
    if (!(error instanceof ApiError) || error.code !== "in_use") {
      showError(problems, error, "Not deleted:");
      return;
    }
    const answer = await dialog(`${userName(u)} is still in use`,
      h("div", {}, h("p", { class: "alert warn" }, describe(error)), h("p", {}, "Delete anyway? Those keys and numbers will then lead nowhere.")),
      [{ label: "Keep", value: false }, { label: "Delete anyway", value: true, class: "danger" }]);
    if (answer !== true) return;
    try {
      await api("DELETE", path, { query: { force: "true" } });
    } catch (again) {
      showError(problems, again, "Not deleted:");
      return;
    }
  }
  toast(`Deleted ${userName(u)}.`);
  await reload();
}
