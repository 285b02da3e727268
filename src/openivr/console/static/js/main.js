// The console's shell: sign-in, the navigation, and which page a #/route shows.

import { h, put } from "./dom.js";
import { api, acct, list } from "./api.js";
import { session, signIn, endSession, onSessionEnd } from "./session.js";
import { serverFeatures, forgetFeatures } from "./data.js";
import { describe } from "./ui.js";

const root = document.getElementById("app");
let shell = null; // {main, nav, who}
let leaveGuard = null;
let lastHash = "";

const NAV = [
  ["#/apps", "Voice apps"],
  ["#/try", "Try a call"],
  ["#/voicemail", "Voicemail"],
  ["#/calls", "Call log"],
  ["#/users", "Users"],
  ["#/numbers", "Phone numbers"],
];

// route pattern → [module, export]; the first match wins.
const ROUTES = [
  [/^#\/apps\/([^/]+)\/prompts$/, "./views/prompts.js"],
  [/^#\/apps\/([^/]+)$/, "./views/editor.js"],
  [/^#\/apps$/, "./views/apps.js"],
  [/^#\/try(?:\/([^/]+))?$/, "./views/simulate.js"],
  [/^#\/voicemail(?:\/([^/]+))?$/, "./views/voicemail.js"],
  [/^#\/calls$/, "./views/calls.js"],
  [/^#\/users$/, "./views/users.js"],
  [/^#\/numbers$/, "./views/numbers.js"],
  [/^#\/teams$/, "./views/teams.js"],
  [/^#\/schedules$/, "./views/schedules.js"],
  [/^#\/recordings$/, "./views/recordings.js"],
  [/^#\/security$/, "./views/security.js"],
];

/** The number of new voicemails, shown beside "Voicemail" in the navigation. */
export async function refreshUnread() {
  if (!shell) return;
  const badge = shell.nav.querySelector("a[href='#/voicemail'] .count");
  if (!badge) return;
  try {
    const boxes = (await list(acct("/voiceapp"))).filter((a) => a.app_type === "mailbox");
    const answers = await Promise.all(boxes.map((b) => api("GET", acct(`/voiceapp/${encodeURIComponent(b.app_id)}/voicemail`), { query: { unread: "true", limit: 1 } })));
    const unread = answers.reduce((n, a) => n + Number(a.total || 0), 0);
    badge.textContent = unread ? String(unread) : "";
    badge.hidden = !unread;
    badge.setAttribute("aria-label", `${unread} new`);
  } catch {
    badge.hidden = true;
  }
}

/** A page that has unsaved changes asks before it is left. */
export function guardLeaving(fn) {
  leaveGuard = fn;
}

window.addEventListener("beforeunload", (e) => {
  if (leaveGuard && leaveGuard()) {
    e.preventDefault();
    e.returnValue = "";
  }
});

function loginPage(reason) {
  shell = null;
  leaveGuard = null;
  const email = h("input", { type: "email", name: "email", id: "login-email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", id: "login-password", autocomplete: "current-password", required: true });
  const problem = h("div", { class: "form-error", "aria-live": "assertive" });
  const submit = h("button", { type: "submit", class: "primary wide" }, "Sign in");
  const form = h("form", { class: "login-form", novalidate: false },
    h("div", { class: "field" }, h("label", { for: email.id }, "E-mail"), email),
    h("div", { class: "field" }, h("label", { for: password.id }, "Password"), password),
    problem, submit);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    submit.disabled = true;
    put(problem);
    try {
      await signIn(email.value.trim(), password.value);
      password.value = "";
      forgetFeatures();
    } catch (error) {
      put(problem, h("p", { class: "alert error", role: "alert" }, describe(error)));
      password.focus();
      submit.disabled = false;
      return;
    }
    await start().catch((error) => {
      if (session()) loginPage(describe(error));
    });
  });
  put(root, h("main", { id: "main", class: "login", tabindex: "-1" },
    h("div", { class: "login-card" },
      h("div", { class: "brand big" }, h("img", { src: "/console/icon.svg", alt: "", width: "40", height: "40" }), h("span", {}, "OpenIVR")),
      h("h1", {}, "Sign in to your phone line"),
      reason ? h("p", { class: "alert info", role: "status" }, reason) : null,
      form)));
  document.title = "Sign in — OpenIVR";
  email.focus();
}

function buildShell(features) {
  const main = h("main", { id: "main", tabindex: "-1" });
  const links = NAV.slice();
  if (features.teams) links.splice(5, 0, ["#/teams", "Teams"]);
  if (features.schedules) links.splice(links.length, 0, ["#/schedules", "Opening hours"]);
  // Call recordings and security events are the admins' (the API answers others 403).
  if (features.admin) {
    links.splice(links.findIndex(([href]) => href === "#/calls") + 1, 0, ["#/recordings", "Recordings"]);
    links.push(["#/security", "Security"]);
  }
  const navList = h("ul", { id: "nav-list" }, links.map(([href, label]) => h("li", {}, h("a", { href }, label,
    href === "#/voicemail" ? h("span", { class: "count", hidden: true }) : null))));
  const toggle = h("button", { type: "button", class: "nav-toggle", "aria-expanded": "false", "aria-controls": "nav-list" }, "Menu");
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    nav.classList.toggle("open", open);
  });
  const nav = h("nav", { "aria-label": "Main" }, navList);
  navList.addEventListener("click", (e) => {
    if (e.target.closest("a")) {
      nav.classList.remove("open");
      toggle.setAttribute("aria-expanded", "false");
    }
  });
  const who = h("span", { class: "who" });
  const signOut = h("button", { type: "button", class: "link sign-out", onclick: () => {
    if (leaveGuard && leaveGuard() && !window.confirm("Leave without saving your changes?")) return;
    leaveGuard = null;
    endSession("You have signed out.");
  } }, "Sign out");
  const header = h("header", { class: "top" },
    h("a", { class: "brand", href: "#/apps" }, h("img", { src: "/console/icon.svg", alt: "", width: "28", height: "28" }), h("span", {}, "OpenIVR")),
    toggle, nav, h("div", { class: "account" }, who, signOut));
  put(root, header, main);
  return { main, nav, who };
}

async function render() {
  if (!session() || !shell) return;
  let hash = window.location.hash || "#/apps";
  if (hash === "#" || hash === "#/") hash = "#/apps";
  if (leaveGuard && hash !== lastHash && leaveGuard()) {
    if (!window.confirm("You have changes that are not saved. Leave this page anyway?")) {
      history.replaceState(null, "", lastHash);
      return;
    }
  }
  leaveGuard = null;
  lastHash = hash;
  for (const a of shell.nav.querySelectorAll("a")) {
    const here = hash === a.getAttribute("href") || hash.startsWith(a.getAttribute("href") + "/");
    if (here) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const found = ROUTES.find(([re]) => re.test(hash));
  const main = shell.main;
  if (!found) {
    put(main, h("h1", {}, "Page not found"), h("p", {}, h("a", { href: "#/apps" }, "Go to the voice apps")));
    return;
  }
  const params = found[0].exec(hash).slice(1).map((p) => (p === undefined ? undefined : decodeURIComponent(p)));
  put(main, h("p", { class: "loading" }, "Loading…"));
  try {
    const view = await import(found[1]);
    if (lastHash !== hash) return; // the user moved on meanwhile
    await view.show(main, ...params);
  } catch (error) {
    if (!session()) return;
    put(main, h("h1", {}, "Something went wrong"), h("p", { class: "alert error", role: "alert" }, describe(error)));
  }
  main.focus({ preventScroll: true });
}

async function start() {
  const features = await serverFeatures();
  shell = buildShell(features);
  const me = session();
  shell.who.textContent = me.email || "";
  api("GET", acct()).then(({ data }) => {
    if (shell && data && data.name) {
      shell.who.textContent = data.name;
      shell.who.title = `Signed in as ${me.email || ""}`;
    }
  }).catch(() => {});
  if (!window.location.hash || window.location.hash === "#main") history.replaceState(null, "", "#/apps");
  lastHash = "";
  await render();
  refreshUnread();
}

onSessionEnd((reason) => {
  leaveGuard = null;
  for (const d of document.querySelectorAll("dialog")) d.remove();
  loginPage(reason);
});

window.addEventListener("hashchange", () => render());

document.addEventListener("click", (e) => {
  const skip = e.target.closest("a.skip");
  if (skip) {
    e.preventDefault();
    document.getElementById("main")?.focus();
  }
});

if (session()) {
  start().catch((error) => {
    if (session()) loginPage(describe(error)); // else the session's end already showed why
  });
} else {
  loginPage("");
}
