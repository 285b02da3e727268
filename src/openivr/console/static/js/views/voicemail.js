// The voicemail inbox of each mailbox: newest first, play, download, mark read, delete, and
// how each message was delivered (e-mail, webhook).

import { h, put, field, select, checkbox, seconds, when, localPath } from "../dom.js";
import { api, acct, list } from "../api.js";
import { toast, showError, confirmAction, heading, busy, describe } from "../ui.js";
import { refreshUnread } from "../main.js";

const PAGE = 20;
const STATE_WORDS = {
  none: ["Kept here only", ""],
  delivered: ["Sent", "delivered"],
  pending: ["Sending…", "pending"],
  sending: ["Sending…", "pending"],
  failed: ["Could not be sent", "failed"],
  not_configured: ["E-mail is not set up", "warning"],
};

export async function show(main, mailboxId, page = 1, filters = {}) {
  document.title = "Voicemail — OpenIVR";
  const boxes = (await list(acct("/voiceapp"))).filter((a) => a.app_type === "mailbox");
  if (!boxes.length) {
    put(main, heading("Voicemail"), h("p", { class: "empty" }, "This account has no voicemail box. Create one under Voice apps."));
    return;
  }
  const box = boxes.find((b) => b.app_id === mailboxId) || boxes[0];
  const base = acct(`/voiceapp/${encodeURIComponent(box.app_id)}/voicemail`);
  const { data, total } = await api("GET", base, {
    query: { limit: PAGE, page, unread: filters.unread ? "true" : undefined, caller: filters.caller || undefined },
  });
  const messages = Array.isArray(data) ? data : [];
  refreshUnread();
  const count = Number(total || messages.length);
  const problems = h("div", { hidden: true });
  const reload = () => show(main, box.app_id, page, filters);

  const boxSelect = select(boxes.map((b) => [b.app_id, b.name]), box.app_id, { name: "mailbox" });
  boxSelect.addEventListener("change", () => { window.location.hash = `#/voicemail/${encodeURIComponent(boxSelect.value)}`; });
  const unread = checkbox("Unread only", Boolean(filters.unread), { name: "unread" });
  const caller = h("input", { type: "tel", name: "caller", value: filters.caller || "", placeholder: "+46701234567" });
  const apply = h("button", { type: "submit" }, "Show");
  const filterForm = h("form", { class: "row filters", "aria-label": "Which messages" },
    boxes.length > 1 ? field("Voicemail box", boxSelect) : null, field("From number", caller),
    h("div", { class: "field end" }, unread.wrap), h("div", { class: "field end" }, apply));
  filterForm.addEventListener("submit", (e) => {
    e.preventDefault();
    show(main, box.app_id, 1, { unread: unread.input.checked, caller: caller.value.trim() });
  });

  const pages = Math.max(1, Math.ceil(count / PAGE));
  const pager = pages > 1 ? h("nav", { class: "row pager", "aria-label": "Pages" },
    h("button", { type: "button", disabled: page <= 1, onclick: () => show(main, box.app_id, page - 1, filters) }, "Newer"),
    h("span", {}, `Page ${page} of ${pages}`),
    h("button", { type: "button", disabled: page >= pages, onclick: () => show(main, box.app_id, page + 1, filters) }, "Older")) : null;

  put(main,
    heading(`Voicemail: ${box.name}`, h("a", { class: "button", href: `#/apps/${encodeURIComponent(box.app_id)}` }, "Box settings")),
    h("p", { class: "lead" }, count === 1 ? "1 message, newest first." : `${count} messages, newest first.`),
    filterForm, problems,
    messages.length
      ? h("ul", { class: "cards inbox" }, messages.map((m) => messageCard(m, base, problems, reload)))
      : h("p", { class: "empty" }, filters.unread || filters.caller ? "No messages match." : "No messages yet."),
    pager);
}

function messageCard(m, base, problems, reload) {
  const path = `${base}/${encodeURIComponent(m.message_id)}`;
  const audioPath = localPath(m.audio_url);
  const [stateWords, stateClass] = STATE_WORDS[m.delivery_state] || [m.delivery_state, ""];
  const readBadge = h("span", { class: "badge unread", hidden: m.read }, "New");
  const audio = h("audio", { controls: true, preload: "none", src: audioPath, "aria-label": `Message from ${m.caller || "an unknown caller"}` });
  let read = m.read;
  const toggle = h("button", { type: "button", name: "read" }, read ? "Mark as new" : "Mark as heard");
  const setRead = async (value) => {
    await api("PUT", path, { json: { read: value } });
    read = value;
    readBadge.hidden = value;
    toggle.textContent = value ? "Mark as new" : "Mark as heard";
    refreshUnread();
  };
  audio.addEventListener("play", () => { if (!read) setRead(true).catch(() => {}); });
  toggle.addEventListener("click", busy(toggle, async () => {
    try {
      await setRead(!read);
    } catch (error) {
      showError(problems, error);
    }
  }));
  const del = h("button", { type: "button", name: "delete", class: "danger-text" }, "Delete");
  del.addEventListener("click", busy(del, async () => {
    if (!(await confirmAction("Delete this message?", `The message from ${m.caller || "an unknown caller"} is deleted for good.`))) return;
    try {
      await api("DELETE", path);
      toast("Message deleted.");
      refreshUnread();
      await reload();
    } catch (error) {
      showError(problems, error, "Not deleted:");
    }
  }));
  const details = h("div", { class: "delivery" });
  const more = h("button", { type: "button", name: "details", class: "link", "aria-expanded": "false" }, "Delivery details");
  more.addEventListener("click", busy(more, async () => {
    if (more.getAttribute("aria-expanded") === "true") {
      put(details);
      more.setAttribute("aria-expanded", "false");
      return;
    }
    try {
      const { data } = await api("GET", path);
      const rows = (data.delivery || []).map((d) => h("li", {},
        h("strong", {}, d.channel === "email" ? "E-mail" : d.channel === "webhook" ? "Web address" : d.channel), ` to ${d.target}: `,
        (STATE_WORDS[d.state] || [d.state])[0], d.attempts ? ` after ${d.attempts} attempt(s)` : "",
        d.last_error ? h("span", { class: "hint" }, ` — ${d.last_error}`) : null));
      put(details, rows.length ? h("ul", {}, rows) : h("p", { class: "hint" }, "This message is kept here only."));
      more.setAttribute("aria-expanded", "true");
    } catch (error) {
      put(details, h("p", { class: "alert error" }, describe(error)));
    }
  }));
  return h("li", { class: "card message", dataset: { messageId: m.message_id } },
    h("div", { class: "card-main" },
      h("h2", { class: "card-title" }, m.caller || "Unknown caller", " ", readBadge),
      h("p", { class: "meta" }, h("span", {}, when(m.created)), h("span", {}, seconds(m.duration)),
        h("span", { class: `badge ${stateClass}` }, stateWords)),
      audio, h("div", {}, more), details),
    h("div", { class: "card-actions" },
      h("a", { class: "button", href: audioPath, download: `voicemail-${m.message_id}.wav` }, "Download"), toggle, del));
}
