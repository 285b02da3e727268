// What the account has, loaded through the API for the pickers and lists of each page.

import { acct, api, list, probe } from "./api.js";
import { session } from "./session.js";

let features = null;
let voices = null;

/**
 * Which optional parts of the API this server has (teams, opening hours), and whether the
 * signed-in user is an admin (call recordings and security events are theirs): probed once.
 */
export async function serverFeatures() {
  if (!features) {
    const [teams, schedules, me] = await Promise.all([
      probe(acct("/team")), probe(acct("/schedule")),
      api("GET", acct(`/user/${encodeURIComponent(session().userId)}`)).then(({ data }) => data, () => null),
    ]);
    features = { teams: teams !== null, schedules: schedules !== null, admin: Boolean(me && me.type === "admin") };
  }
  return features;
}

/** Forget what was probed (a new sign-in may reach another server version). */
export function forgetFeatures() {
  features = null;
  voices = null;
}

/** The speech engine's voices: [{voice, language_label, speaker, gender}]. */
export async function voiceList() {
  if (!voices) voices = await list("/tts/prompt/voice");
  return voices;
}

/** [value, label] pairs for a voice <select>. */
export function voiceOptions(all) {
  return all.map((v) => [v.voice, `${v.language_label} — ${v.speaker} (${v.gender})`]);
}

/** Everything the pickers name: apps, users, numbers, and teams/schedules when they exist. */
export async function accountData() {
  const f = await serverFeatures();
  const [apps, users, numbers, teams, schedules] = await Promise.all([
    list(acct("/voiceapp")),
    list(acct("/user")),
    list(acct("/phonenumbersubscription")),
    f.teams ? list(acct("/team")) : Promise.resolve(null),
    f.schedules ? list(acct("/schedule")) : Promise.resolve(null),
  ]);
  return { apps, users, numbers, teams, schedules };
}

/** Prompts of several apps at once: {app_id: [prompt, ...]}. */
export async function promptsOf(apps) {
  const lists = await Promise.all(apps.map((a) => list(acct(`/voiceapp/${encodeURIComponent(a.app_id)}/prompt`))));
  const out = {};
  apps.forEach((a, i) => { out[a.app_id] = lists[i]; });
  return out;
}

/** A person's name as people say it. */
export function userName(u) {
  const name = `${u.user_fname || ""} ${u.user_lname || ""}`.trim();
  return name || u.email || u.user_id;
}

/** What kind of thing an app is, in words. */
export function appKind(app) {
  if (app.app_type === "ivr") return app.play_menu === "no" ? "Announcement" : "Phone menu";
  if (app.app_type === "mailbox") return "Voicemail box";
  if (app.app_type === "sysprompt") return "System messages";
  return app.app_type;
}

export function appHref(app, part = "") {
  return `#/apps/${encodeURIComponent(app.app_id)}${part}`;
}

export async function getApp(appId) {
  return api("GET", acct(`/voiceapp/${encodeURIComponent(appId)}`));
}
