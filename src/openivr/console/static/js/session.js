// The signed-in session: the access token lives in sessionStorage (this tab only) and in
// memory, never in a URL. It ends when the token would (its exp), on sign-out, or on a 401.

const KEY = "openivr.console.session";
// A public client id of the token endpoint (the hosted web app's); its secret is the same.
const CLIENT = "sonetel-web";
let current = null;
let timer = null;
const listeners = new Set();

function decodeClaims(token) {
  const part = token.split(".")[1] || "";
  const b64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

function arm() {
  clearTimeout(timer);
  if (!current) return;
  const left = current.exp * 1000 - Date.now();
  // setTimeout holds at most ~24.8 days; tokens live far less, but stay safe.
  timer = setTimeout(() => endSession("Your session has ended. Please sign in again."),
    Math.max(0, Math.min(left, 2 ** 31 - 1)));
}

/** The session, or null when nobody is signed in (or the token's time is up). */
export function session() {
  if (!current) {
    try {
      const stored = JSON.parse(sessionStorage.getItem(KEY) || "null");
      if (stored && stored.token && stored.exp * 1000 > Date.now()) {
        current = stored;
        arm();
      } else if (stored) {
        sessionStorage.removeItem(KEY);
      }
    } catch {
      sessionStorage.removeItem(KEY);
    }
  }
  if (current && current.exp * 1000 <= Date.now()) {
    endSession("Your session has ended. Please sign in again.");
    return null;
  }
  return current;
}

/** Called with a reason when the session ends (sign-out, expiry, revoked token). */
export function onSessionEnd(fn) {
  listeners.add(fn);
}

/** Forget the token everywhere and tell the page. */
export function endSession(reason = "") {
  const had = current !== null || sessionStorage.getItem(KEY) !== null;
  current = null;
  clearTimeout(timer);
  sessionStorage.removeItem(KEY);
  if (had) for (const fn of listeners) fn(reason);
}

/** Sign in with e-mail and password; resolves the session or rejects with a message. */
export async function signIn(email, password) {
  const form = new URLSearchParams({ grant_type: "password", username: email, password, refresh: "no" });
  let res;
  try {
    res = await fetch("/oauth/token", {
      method: "POST",
      headers: {
        Authorization: "Basic " + btoa(`${CLIENT}:${CLIENT}`),
        "Content-Type": "application/x-www-form-urlencoded",
        Accept: "application/json",
      },
      body: form,
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new Error("The server did not answer. Check the connection and try again.");
  }
  const body = await res.json().catch(() => ({}));
  if (res.status === 401) throw new Error("That e-mail and password do not match an account.");
  if (!res.ok || !body.access_token) {
    throw new Error(body.error_description || `Signing in failed (HTTP ${res.status}).`);
  }
  const claims = decodeClaims(body.access_token);
  current = {
    token: body.access_token,
    accountId: String(claims.acc_id),
    userId: String(claims.user_id),
    exp: Number(claims.exp),
    email,
  };
  sessionStorage.setItem(KEY, JSON.stringify(current));
  arm();
  return current;
}
