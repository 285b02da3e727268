// Call recordings (admins only): newest first, who called whom, which way, how long and how
// the recording went; play in the page, download, delete.

import { h, put, seconds, when, localPath } from "../dom.js";
import { api, acct, list, ApiError } from "../api.js";
import { session } from "../session.js";
import { toast, showError, confirmAction, heading, busy, adminsOnly } from "../ui.js";
import { recordingSetting } from "../recordingsetting.js";

const PAGE = 20;
const STATUS_WORDS = {
  complete: ["Complete", "ok"],
  recording: ["Recording now", "pending"],
  interrupted: ["Interrupted (the node stopped)", "warning"],
  failed: ["Not recorded", "failed"],
};
const DIRECTION_WORDS = { inbound: "Incoming", outbound: "Outgoing (callback)" };

export async function show(main, _unused, offset = 0) {
  document.title = "Call recordings — OpenIVR";
  let found;
  let apps;
  let setting;
  try {
    [found, apps, setting] = await Promise.all([
      api("GET", "/call-recording", {
        query: { account_id: session().accountId, fields: "file_access_details,voice_call_details", limit: PAGE + 1, offset },
      }),
      list(acct("/voiceapp")),
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
  const reload = () => show(main, undefined, offset);
  // A call dialled straight to an app (its service id, a shortcode) names the app.
  const appNames = Object.fromEntries(apps.map((a) => [a.app_id, a.name]));
  const older = h("button", { type: "button", name: "older", disabled: all.length <= PAGE }, "Older recordings");
  older.addEventListener("click", busy(older, () => show(main, undefined, offset + PAGE)));
  const newer = h("button", { type: "button", name: "newer", disabled: offset === 0 }, "Newer recordings");
  newer.addEventListener("click", busy(newer, () => show(main, undefined, Math.max(0, offset - PAGE))));
  put(main, heading("Call recordings"),
    h("p", { class: "lead" }, "Recorded calls, newest first. Recordings are deleted by themselves after the days the node keeps them."),
    setting, problems,
    recordings.length
      ? h("ul", { class: "cards inbox" }, recordings.map((r) => recordingCard(r, appNames, problems, reload)))
      : h("p", { class: "empty" }, offset ? "No older recordings." : "No recordings yet."),
    all.length > PAGE || offset ? h("nav", { class: "row pager", "aria-label": "Pages" }, newer, older) : null);
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
