// An app's messages (prompts): hear each one, upload a recording (drag and drop), type a text
// and hear it spoken, keep it as the message, go back to the default, add and delete prompts;
// each shows the number that records it by phone (*22, the number, #).

import { h, put, field, select, player, seconds } from "../dom.js";
import { api, acct, ApiError } from "../api.js";
import { voiceList, voiceOptions, appHref } from "../data.js";
import { toast, showError, confirmAction, ask, heading, busy, describe, dialog } from "../ui.js";

export async function show(main, appId) {
  const base = acct(`/voiceapp/${encodeURIComponent(appId)}`);
  const [{ data: app }, { data: prompts }, voices] = await Promise.all([
    api("GET", base), api("GET", `${base}/prompt`), voiceList(),
  ]);
  document.title = `Messages of ${app.name} — OpenIVR`;
  const problems = h("div", { hidden: true });
  const reload = () => show(main, appId);
  const standard = prompts.filter((p) => p.type === "standard");
  const custom = prompts.filter((p) => p.type !== "standard");
  const ctx = { app, base, voices, problems, reload };

  const newName = h("input", { type: "text", name: "prompt_name", maxlength: "100", required: true, placeholder: "e.g. Holiday greeting" });
  const add = h("button", { type: "submit", class: "primary" }, "Add");
  const addForm = h("form", { class: "inline-form two", "aria-label": "Add a message" }, field("Name", newName), h("div", { class: "field end" }, add));
  addForm.addEventListener("submit", busy(add, async () => {
    put(problems);
    try {
      await api("POST", `${base}/prompt`, { json: { name: newName.value.trim() } });
      toast(`Added “${newName.value.trim()}”. Upload a recording or type its text.`);
      await reload();
    } catch (error) {
      showError(problems, error, "Not added:");
    }
  }));

  put(main,
    h("p", { class: "crumbs" }, h("a", { href: "#/apps" }, "Voice apps"), " › ", h("a", { href: appHref(app) }, app.name), " › Messages"),
    heading(`Messages of ${app.name}`, h("a", { class: "button", href: appHref(app) }, app.app_type === "sysprompt" ? "Settings" : "Edit app")),
    h("p", { class: "lead" }, "Listen to what callers hear. Replace a message with your own recording (a WAV file) or type a text to be spoken; remove it to go back to the standard recording."),
    h("p", { class: "hint" }, "Or record it by phone: from a desk phone registered as you, dial *22, then the message's number and #; speak after the beep and press # to end."),
    problems,
    h("section", { "aria-labelledby": "std-h" }, h("h2", { id: "std-h" }, "Standard messages"),
      standard.length ? h("ul", { class: "cards" }, standard.map((p) => promptCard(p, ctx))) : h("p", { class: "empty" }, "This app has no standard messages.")),
    app.app_type === "sysprompt" ? null : h("section", { "aria-labelledby": "custom-h" }, h("h2", { id: "custom-h" }, "Your own messages"),
      h("p", { class: "hint" }, "Messages a menu key can play (“Play a message”)."),
      custom.length ? h("ul", { class: "cards" }, custom.map((p) => promptCard(p, ctx))) : h("p", { class: "empty" }, "None yet."),
      h("div", { class: "panel" }, h("h3", {}, "Add a message"), addForm)));
}

function describeMessage(p) {
  if (p.exists) {
    if (p.message_text) return ["Text to speech: ", h("span", { class: "said" }, `“${p.message_text}”`)];
    return [`Your recording${p.file_name ? ` (${p.file_name})` : ""}`];
  }
  if (p.default_text) return ["Standard recording: ", h("span", { class: "said" }, `“${p.default_text}”`)];
  return [h("span", { class: "said" }, "No message yet: callers hear nothing here.")];
}

function promptCard(p, ctx) {
  const { base, problems, reload } = ctx;
  const path = `${base}/prompt/${encodeURIComponent(p.prompt_id)}`;
  const tools = h("div", { class: "tools" });
  const card = h("li", { class: "card prompt", dataset: { promptId: p.prompt_id } });
  const openTool = (which) => {
    const already = tools.dataset.open === which;
    put(tools);
    delete tools.dataset.open;
    if (already) return;
    tools.dataset.open = which;
    tools.appendChild(which === "upload" ? uploadPanel(p, path, ctx) : textPanel(p, path, ctx));
    const first = tools.querySelector("textarea, input, button");
    if (first) first.focus();
  };
  const uploadBtn = h("button", { type: "button", name: "upload", onclick: () => openTool("upload") }, "Upload a recording");
  const typeBtn = h("button", { type: "button", name: "type", onclick: () => openTool("text") }, "Type a text");
  const actions = [uploadBtn, typeBtn];
  if (p.exists) {
    const clear = h("button", { type: "button", name: "clear", class: "danger-text" }, p.type === "standard" ? "Use the standard recording" : "Remove the message");
    clear.addEventListener("click", busy(clear, async () => {
      const ok = await confirmAction(`Remove your message from “${p.name}”?`,
        p.type === "standard" ? "Callers will hear the standard recording again." : "Callers will hear nothing here until you add a message.", "Remove");
      if (!ok) return;
      try {
        await api("DELETE", `${path}/message`);
        toast(`“${p.name}” plays the ${p.type === "standard" ? "standard recording" : "silence"} again.`);
        await reload();
      } catch (error) {
        showError(problems, error, "Not removed:");
      }
    }));
    actions.push(clear);
  }
  if (p.type !== "standard") {
    const rename = h("button", { type: "button", name: "rename" }, "Rename");
    rename.addEventListener("click", busy(rename, async () => {
      const name = await ask(`Rename “${p.name}”`, "New name", p.name);
      if (!name || name === p.name) return;
      try {
        await api("PUT", path, { json: { name } });
        await reload();
      } catch (error) {
        showError(problems, error, "Not renamed:");
      }
    }));
    const del = h("button", { type: "button", name: "delete", class: "danger-text" }, "Delete");
    del.addEventListener("click", busy(del, () => deletePrompt(p, path, ctx)));
    actions.push(rename, del);
  }
  const play = p.play_path
    ? player(p.play_path, `Play ${p.name}`)
    : h("span", { class: "hint" }, "Nothing to play");
  card.append(
    h("div", { class: "card-main" },
      h("h3", { class: "card-title" }, p.name),
      h("p", { class: "meta" },
        p.exists ? h("span", { class: "badge ok" }, "Your message") : p.type === "standard" ? h("span", { class: "badge" }, "Standard") : h("span", { class: "badge warning" }, "Empty"),
        p.audio_length ? h("span", {}, seconds(p.audio_length)) : null,
        p.record_code ? h("span", { class: "record-code", title: "Dial *22 from your registered desk phone, then this number and #" }, `Number ${p.record_code} (record by phone: *22, ${p.record_code}#)`) : null),
      h("p", { class: "description" }, describeMessage(p)),
      play),
    h("div", { class: "card-actions" }, actions),
    tools);
  // The whole card takes a dropped file, not only the upload panel.
  card.addEventListener("dragover", (e) => {
    if (!e.dataTransfer || ![...e.dataTransfer.types].includes("Files")) return;
    e.preventDefault();
    if (tools.dataset.open !== "upload") openTool("upload");
    card.querySelector(".dropzone")?.classList.add("over");
  });
  card.addEventListener("drop", (e) => {
    const zone = card.querySelector(".dropzone");
    if (!zone || e.defaultPrevented) return;
    e.preventDefault();
    zone.classList.remove("over");
    const file = e.dataTransfer && e.dataTransfer.files[0];
    if (file) zone.dispatchEvent(new CustomEvent("file", { detail: file }));
  });
  return card;
}

function uploadPanel(p, path, ctx) {
  const status = h("div", { class: "upload-status", "aria-live": "assertive" });
  const input = h("input", { type: "file", name: "file", accept: ".wav,audio/wav,audio/x-wav,audio/wave" });
  input.id = `file-${p.prompt_id}`;
  // The native file input stays visible: keyboard and screen-reader users choose a file with it.
  const zone = h("div", { class: "dropzone" },
    h("p", { class: "drop-here" }, "Drop a WAV file here"),
    h("p", {}, h("label", { for: input.id }, "or choose one: "), input),
    h("p", { class: "hint" }, "WAV, uncompressed (PCM), at most 10 MB. It is levelled and converted for the phone line."));
  const send = async (file) => {
    put(status, h("p", { class: "alert info" }, `Uploading ${file.name}…`));
    const form = new FormData();
    form.append("file", file, file.name);
    try {
      await api("POST", `${path}/message`, { form });
      toast(`“${p.name}” now plays ${file.name}.`);
      await ctx.reload();
    } catch (error) {
      put(status, h("p", { class: "alert error", role: "alert" }, `${file.name} was not accepted: `, describe(error)));
    }
  };
  input.addEventListener("change", () => { if (input.files[0]) send(input.files[0]); });
  zone.addEventListener("file", (e) => send(e.detail));
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const file = e.dataTransfer && e.dataTransfer.files[0];
    if (file) send(file);
  });
  return h("div", { class: "subpanel" }, zone, status);
}

function textPanel(p, path, ctx) {
  const text = h("textarea", { name: "text", rows: "3", maxlength: "2000" }, p.message_text || p.default_text || "");
  const voice = select(voiceOptions(ctx.voices), p.message_voice || ctx.app.voice || "en", { name: "tts_voice" });
  const listen = h("button", { type: "button", name: "listen" }, "Listen");
  const keep = h("button", { type: "button", name: "keep", class: "primary" }, "Use as the message");
  const out = h("div", { class: "tts-out", "aria-live": "polite" });
  listen.addEventListener("click", busy(listen, async () => {
    try {
      const { data } = await api("POST", "/tts/prompt/convert", { json: { text: text.value, voice: voice.value } });
      const audio = player(data.play_path, "Hear the typed text");
      put(out, audio);
      audio.play().catch(() => {});
    } catch (error) {
      put(out, h("p", { class: "alert error", role: "alert" }, describe(error)));
    }
  }));
  keep.addEventListener("click", busy(keep, async () => {
    try {
      await api("POST", `${path}/message`, { json: { text: text.value, voice: voice.value } });
      toast(`“${p.name}” now says your text.`);
      await ctx.reload();
    } catch (error) {
      put(out, h("p", { class: "alert error", role: "alert" }, "Not kept: ", describe(error)));
    }
  }));
  return h("div", { class: "subpanel" },
    field("What callers hear", text), field("Voice", voice),
    h("div", { class: "row" }, listen, keep), out);
}

async function deletePrompt(p, path, ctx) {
  const ok = await confirmAction(`Delete “${p.name}”?`, "The message is deleted for good.");
  if (!ok) return;
  try {
    await api("DELETE", path);
  } catch (error) {
    if (!(error instanceof ApiError) || error.code !== "in_use") {
      showError(ctx.problems, error, "Not deleted:");
      return;
    }
    const answer = await dialog(`“${p.name}” is still played`,
      h("div", {}, h("p", { class: "alert warn" }, describe(error)), h("p", {}, "Delete it anyway? Those keys will then do nothing.")),
      [{ label: "Keep it", value: false }, { label: "Delete anyway", value: true, class: "danger" }]);
    if (answer !== true) return;
    try {
      await api("DELETE", path, { query: { force: "true" } });
    } catch (again) {
      showError(ctx.problems, again, "Not deleted:");
      return;
    }
  }
  toast(`Deleted “${p.name}”.`);
  await ctx.reload();
}
