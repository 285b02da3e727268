// Shared pieces of the page: notices, errors that show the server's own words, dialogs.

import { h, put, uid } from "./dom.js";
import { ApiError } from "./api.js";

/** A short notice in the polite live region (read out by screen readers). */
export function toast(message, kind = "ok") {
  const box = document.getElementById("toasts");
  const note = h("div", { class: `toast ${kind}` }, message);
  box.appendChild(note);
  setTimeout(() => note.remove(), kind === "error" ? 9000 : 4000);
}

/** What went wrong, in the server's own words when it said something. */
export function describe(error) {
  if (error instanceof ApiError) {
    if (error.detail) return error.detail;
    return `The server refused this (${error.code || "HTTP " + error.status}).`;
  }
  return error && error.message ? error.message : String(error);
}

/** An alert box for an error; `put(box)` clears it. */
export function showError(box, error, prefix = "") {
  put(box, h("div", { class: "alert error", role: "alert" }, prefix ? `${prefix} ` : "", describe(error)));
  box.hidden = false;
}

/** A modal dialog; resolves the value of the button pressed (or null on Escape). */
export function dialog(title, body, buttons) {
  return new Promise((resolve) => {
    const titleId = uid("dlg");
    const actions = h("div", { class: "actions" });
    const el = h("dialog", { class: "dialog", "aria-labelledby": titleId },
      h("h2", { id: titleId }, title), body, actions);
    let answered = false;
    const close = (value) => {
      if (answered) return;
      answered = true;
      el.close();
      el.remove();
      resolve(value);
    };
    for (const b of buttons) {
      actions.appendChild(h("button", {
        type: "button", class: b.class || "", onclick: () => close(b.value),
      }, b.label));
    }
    el.addEventListener("cancel", (e) => { e.preventDefault(); close(null); });
    document.body.appendChild(el);
    el.showModal();
    const first = el.querySelector("input, select, textarea") || actions.lastChild;
    if (first) first.focus();
  });
}

/** Ask before doing something that cannot be undone. */
export async function confirmAction(title, text, label = "Delete", danger = true) {
  const answer = await dialog(title, h("p", {}, text), [
    { label: "Cancel", value: false },
    { label, value: true, class: danger ? "danger" : "primary" },
  ]);
  return answer === true;
}

/** Ask for one line of text (e.g. a new name); null when cancelled. */
export async function ask(title, label, value = "", okLabel = "Save") {
  const input = h("input", { type: "text", value, required: true, maxlength: "100" });
  input.id = uid("ask");
  const body = h("div", { class: "field" }, h("label", { for: input.id }, label), input);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      input.closest("dialog").querySelector("button.primary").click();
    }
  });
  const answer = await dialog(title, body, [
    { label: "Cancel", value: null },
    { label: okLabel, value: "ok", class: "primary" },
  ]);
  return answer === "ok" ? input.value.trim() : null;
}

/** The page a user who may not see it gets: the server's own words, and why. */
export function adminsOnly(main, title, what, error) {
  put(main, heading(title), h("p", { class: "alert info", role: "status" },
    `Only the account's admins can see ${what}. `, h("span", { class: "hint" }, `(The server said: ${error.detail || error.code}.)`)));
}

/**
 * What a dialog's save throws when someone else saved first (HTTP 412): the message and a
 * "Load their version" button that closes the dialog; `chosen()` says whether it was pressed,
 * so the caller opens the dialog again on the other version.
 */
export function conflictError(message) {
  const error = new Error(`${message} Your changes are not saved.`);
  let pressed = false;
  const load = h("button", { type: "button", name: "reload", class: "primary" }, "Load their version");
  load.addEventListener("click", () => {
    pressed = true;
    load.closest("dialog").querySelector("button[name=dialog_cancel]").click();
  });
  error.actions = [load];
  error.chosen = () => pressed;
  return error;
}

/** A page heading with optional actions beside it. */
export function heading(text, ...actions) {
  return h("div", { class: "page-head" }, h("h1", {}, text), actions.length ? h("div", { class: "actions" }, actions) : null);
}

/** A button that shows it is busy while its async action runs. */
export function busy(button, action) {
  return async (event) => {
    if (event) event.preventDefault();
    if (button.disabled) return;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    try {
      await action(event);
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  };
}

/**
 * A dialog with a form: `onSubmit()` runs on Save; if it throws, the error shows inside the
 * dialog (with the error's `actions`, buttons, when it has any) and it stays open. Resolves true when saved, false when cancelled.
 */
export function formDialog(title, body, submitLabel, onSubmit) {
  return new Promise((resolve) => {
    const titleId = uid("dlg");
    const problem = h("div", { class: "dialog-problem", "aria-live": "assertive" });
    const save = h("button", { type: "submit", class: "primary", name: "dialog_save" }, submitLabel);
    const cancel = h("button", { type: "button", name: "dialog_cancel" }, "Cancel");
    const form = h("form", { method: "dialog", novalidate: true }, body, problem, h("div", { class: "actions" }, cancel, save));
    const el = h("dialog", { class: "dialog", "aria-labelledby": titleId }, h("h2", { id: titleId }, title), form);
    const close = (value) => {
      el.close();
      el.remove();
      resolve(value);
    };
    cancel.addEventListener("click", () => close(false));
    el.addEventListener("cancel", (e) => { e.preventDefault(); close(false); });
    form.addEventListener("submit", busy(save, async () => {
      put(problem);
      try {
        await onSubmit();
        close(true);
      } catch (error) {
        // An error may carry buttons of what to do about it (a conflict: load their version).
        put(problem, h("div", { class: "alert error", role: "alert" }, describe(error),
          error.actions ? h("div", { class: "actions" }, error.actions) : null));
      }
    }));
    document.body.appendChild(el);
    el.showModal();
    const first = el.querySelector("input, select, textarea");
    if (first) first.focus();
  });
}
