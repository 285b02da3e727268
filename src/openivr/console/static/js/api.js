// The public API, as any client uses it: a bearer token, JSON in and out, the envelope
// {resource, status, response}. The console has no other way into the server.

import { session, endSession } from "./session.js";

/** A failed request: HTTP status, the API's stable code and its human detail. */
export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || "";
    this.detail = detail || "";
  }
}

function failureOf(status, body) {
  if (body && typeof body === "object") {
    if (body.response && typeof body.response === "object" && body.response.code) {
      return new ApiError(status, body.response.code, body.response.detail);
    }
    if (body.error) return new ApiError(status, body.error, body.error_description);
  }
  return new ApiError(status, "http_" + status, `The server answered HTTP ${status}.`);
}

/**
 * Call the API. Options: json (a body sent as application/json), form (FormData), ifMatch,
 * query (object), blob (answer as a Blob). Resolves {data, etag, total, status};
 * rejects with ApiError. A 401 ends the session: the token expired or was revoked.
 */
export async function api(method, path, options = {}) {
  const current = session();
  const headers = { Accept: "application/json" };
  if (current) headers.Authorization = `Bearer ${current.token}`;
  let body;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.json);
  } else if (options.form) {
    body = options.form;
  }
  if (options.ifMatch) headers["If-Match"] = options.ifMatch;
  let url = path;
  if (options.query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(options.query)) {
      if (v !== undefined && v !== null && v !== "") params.set(k, String(v));
    }
    const qs = params.toString();
    if (qs) url += (url.includes("?") ? "&" : "?") + qs;
  }
  let res;
  try {
    res = await fetch(url, { method, headers, body, cache: "no-store", credentials: "omit" });
  } catch {
    throw new ApiError(0, "network", "The server did not answer. Check the connection and try again.");
  }
  if (options.blob && res.ok) {
    return { data: await res.blob(), etag: res.headers.get("ETag"), status: res.status };
  }
  let parsed = null;
  const text = await res.text();
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
  }
  if (res.status === 401) {
    const error = failureOf(401, parsed);
    endSession("Your session has ended. Please sign in again.");
    throw error;
  }
  // Any 2xx is success (every success answers 200; any other 2xx is taken as success too), unless the envelope says it failed
  // (the hosted API answers some failures with HTTP 200).
  if (!res.ok || (parsed && parsed.status === "failed")) throw failureOf(res.status, parsed);
  return {
    data: parsed && "response" in parsed ? parsed.response : parsed,
    etag: res.headers.get("ETag"),
    total: res.headers.get("X-Total-Count"),
    status: res.status,
  };
}

/** The account's own path prefix. */
export function acct(suffix = "") {
  const current = session();
  return `/account/${encodeURIComponent(current ? current.accountId : "")}${suffix}`;
}

/** GET a list; "No entries found" (phone numbers) and null become []. */
export async function list(path, options) {
  const { data } = await api("GET", path, options);
  return Array.isArray(data) ? data : [];
}

/**
 * Whether an endpoint exists on this server (teams and opening hours come in a later version):
 * its list, or null when the server answers 404 or 405.
 */
export async function probe(path) {
  try {
    return await list(path);
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 405)) return null;
    throw error;
  }
}
