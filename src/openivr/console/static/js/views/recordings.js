// Call recordings (admins only): newest first, who called whom, which way, how long and how
// the recording went, filtered by whose calls and when; play in the page, download, delete.

import { h, put, field, select, seconds, when, localPath, instantOf } from "../dom.js";
import { api, acct, list, ApiError } from "../api.js";
import { userName } from "../data.js";
import { session } from "../session.js";
import { toast, showError, confirmAction, heading, busy, adminsOnly, describe } from "../ui.js";
import { recordingSetting } from "../recordingsetting.js";

const PAGE = 20;
const STATUS_WORDS = {
  complete: ["Complete", "ok"],
  recording: ["Recording now", "pending"],
  interrupted: ["Interrupted (the node stopped)", "warning"],
  failed: ["Not recorded", "failed"],
};
const DIRECTION_WORDS = { inbound: "Incoming", outbound: "Outgoing (callback)" };

// The API's dates are 20261231T23:59:59Z (UTC); the form's are this browser's local time.
function apiDate(localValue) {
  const iso = instantOf(localValue);
  return iso ? `${iso.slice(0, 19).replace(/-/g, "")}Z` : undefined;
}

export async function show(main, _unused, state = { offset: 0, filters: {} }) {
  document.title = "Call recordings — OpenIVR";
  const { offset, filters: f } = state;
  let found;
  let apps;
  let users;
  let setting;
  let refused = null;
  const query = {
    account_id: session().accountId, fields: "file_access_details,voice_call_details", limit: PAGE + 1, offset,
    user_id: f.user_id || undefined, created_date_min: apiDate(f.sinceLocal), created_date_max: apiDate(f.untilLocal),
  };
  try {
    [found, apps, users, setting] = await Promise.all([
      // A filter the server refuses (from after until) is said beside the form, not thrown.
      api("GET", "/call-recording", { query }).catch((error) => {
        if (error instanceof ApiError && error.status === 400) {
          refused = error;
          return { data: [] };
        }
        throw error;
      }),
      list(acct("/voiceapp")),
      list(acct("/user")),
      recordingSetting(),
    ]);
  } catch (error) {
    if (error instanceof ApiError && error.status === 403) {
      adminsOnly(main, "Call recordings", "call recordings", error);
      return;
    }
    throw error;
  }
  const all = Array.isArray(found.data) ? found.data : [];
  const recordings = all.slice(0, PAGE);
  const problems = h("div", { hidden: true });
  const goTo = (at) => show(main, undefined, { offset: at, filters: f });
  const reload = () => goTo(offset);
  // A call dialled straight to an app (its service id, a shortcode) names the app.
  const appNames = Object.fromEntries(apps.map((a) => [a.app_id, a.name]));
  const older = h("button", { type: "button", name: "older", disabled: all.length <= PAGE }, "Older recordings");
  older.addEventListener("click", busy(older, () => goTo(offset + PAGE)));
  const newer = h("button", { type: "button", name: "newer", disabled: offset === 0 }, "Newer recordings");
  newer.addEventListener("click", busy(newer, () => goTo(Math.max(0, offset - PAGE))));
  const filtered = Object.values(f).some(Boolean);
  const empty = offset ? "No older recordings." : filtered ? "No recordings match." : "No recordings yet.";
  put(main, heading("Call recordings"),
    h("p", { class: "lead" }, "Recorded calls, newest first. Recordings are deleted by themselves after the days the node keeps them."),
    setting, filterForm(main, f, users), problems,
    refused ? h("p", { class: "alert error", role: "alert" }, describe(refused)) : null,
    recordings.length
      ? h("ul", { class: "cards inbox" }, recordings.map((r) => recordingCard(r, appNames, problems, reload)))
      : refused ? null : h("p", { class: "empty" }, empty),
    all.length > PAGE || offset ? h("nav", { class: "row pager", "aria-label": "Pages" }, newer, older) : null);
}

// The API's filters: whose calls (a user's), and when the recording was made.
function filterForm(main, f, users) {
  const user = select([["", "Anyone"], ...users.map((u) => [u.user_id, userName(u)])], f.user_id || "", { name: "user_id" });
  const since = h("input", { type: "datetime-local", name: "since", value: f.sinceLocal || "" });
  const until = h("input", { type: "datetime-local", name: "until", value: f.untilLocal || "" });
  const apply = h("button", { type: "submit", class: "primary", name: "filter" }, "Show recordings");
  const filtered = Object.values(f).some(Boolean);
  const form = h("form", { class: "filters", "aria-label": "Which recordings" },
    h("div", { class: "row" }, field("Calls of", user), field("Recorded from", since), field("Recorded until", until), h("div", { class: "field end" }, apply)));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    show(main, undefined, { offset: 0, filters: { user_id: user.value, sinceLocal: since.value, untilLocal: until.value } });
  });
  return h("details", { class: "panel", open: filtered || window.matchMedia("(min-width: 721px)").matches },
    h("summary", {}, filtered ? "Filters (some recordings are hidden)" : "Filters"), form);
}

function party(name, address) {
  return name ? `${name} (${address})` : address || "Unknown";
}

function recordingCard(r, appNames, problems, reload) {
  const call = r.voice_call_details || {};
  const access = (r.file && r.file.file_access_details) || {};
  const audioPath = localPath(access.url);
  const [statusWords, statusClass] = STATUS_WORDS[r.status] || [r.status, ""];
  const who = `${party(call.from_name, call.from)} → ${call.to_name ? party(call.to_name, call.to) : appNames[call.to] || party("", call.to)}`;
  const hasAudio = audioPath && r.file && r.file.size > 44;
  const del = h("button", { type: "button", name: "delete", class: "danger-text" }, "Delete");
  del.addEventListener("click", busy(del, async () => {
    if (!(await confirmAction("Delete this recording?", `The recording of the call ${who} (${when(call.start_time || r.created_date)}) is deleted for good.`))) return;
    try {
      await api("DELETE", `/call-recording/${encodeURIComponent(r.call_recording_id)}`);
      toast("Recording deleted.");
      await reload();
    } catch (error) {
      showError(problems, error, "Not deleted:");
    }
  }));
  return h("li", { class: "card message recording", dataset: { recordingId: r.call_recording_id } },
    h("div", { class: "card-main" },
      h("h2", { class: "card-title" }, who),
      h("p", { class: "meta" },
        h("span", { class: "when" }, when(call.start_time || r.created_date)),
        h("span", { class: "direction" }, DIRECTION_WORDS[call.direction] || "Direction not known yet"),
        h("span", { class: "length" }, seconds(r.audio_length)),
        h("span", { class: `badge ${statusClass}` }, statusWords)),
      r.failure ? h("p", { class: "hint" }, r.failure) : null,
      hasAudio ? h("audio", { controls: true, preload: "none", src: audioPath, "aria-label": `Recording of the call ${who}` }) : null),
    h("div", { class: "card-actions" },
      hasAudio ? h("a", { class: "button", href: audioPath, download: `recording-${r.call_recording_id}.wav` }, "Download") : null, del));
}
