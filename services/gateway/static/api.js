// The gateway's /api/v1/ as the page uses it: same-origin fetches with the volunteer
// token, retries of what may be retried (network failures, 5xx, proxy pages, 429) with
// a visible state, and every refusal turned into a plain-words key of i18n.js.

const RETRY_LIMIT = 6;
// the longest a rate-limited request waits before it is tried again
const LONGEST_WAIT_MS = 60000;
const FIRST_RETRY_MS = 1000;
const LONGEST_RETRY_MS = 15000;
const MS_PER_SECOND = 1000;
const MS_PER_MINUTE = 60000;
// the Date header is truncated to the second: its middle is the best guess
const HALF_SECOND_MS = 500;
const RETRIED_STATUSES = new Set([500, 502, 503, 504]);
const TOO_MANY_REQUESTS = 429;

// Server time minus this device's time (ms), from the Date header of the last answer.
let skewMs = 0;

export function serverNow() {
  return Date.now() + skewMs;
}

export class Refusal extends Error {
  // key: an i18n key; params: its parameters; code: the API's error code ("" if none)
  constructor(key, params, code, status) {
    super(key);
    this.key = key;
    this.params = params || {};
    this.code = code || "";
    this.status = status;
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function noteSkew(answer) {
  const date = Date.parse(answer.headers.get("Date") || "");
  if (!Number.isNaN(date)) {
    skewMs = date + HALF_SECOND_MS - Date.now();
  }
}

// The gateway's own clock from an answer's server_time_ms (finer than the Date header).
export function noteServerTime(serverTimeMs) {
  if (Number.isFinite(serverTimeMs)) {
    skewMs = serverTimeMs - Date.now();
  }
}

async function readJson(answer) {
  const type = answer.headers.get("Content-Type") || "";
  if (!type.startsWith("application/json")) {
    return null;
  }
  try {
    return await answer.json();
  } catch (error) {
    return null;
  }
}

export function newKey() {
  if (crypto.randomUUID) {
    return crypto.randomUUID();
  }
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// One request, retried while the failure is the network's or the server's.
// `onWait(key, params)` shows the waiting state; it gets null when the wait is over.
export async function request(token, method, path, body, headers, onWait) {
  const init = {
    method: method, credentials: "omit", cache: "no-store",
    headers: Object.assign({ "Authorization": "Bearer " + token }, headers || {}),
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let delay = FIRST_RETRY_MS;
  for (let attempt = 1; ; attempt += 1) {
    let answer = null;
    try {
      answer = await fetch(path, init);
    } catch (error) {
      answer = null;
    }
    const data = answer === null ? null : await readJson(answer);
    const wait = retryWait(answer, data, delay);
    if (wait === null) {
      onWait(null);
      noteSkew(answer);
      return { status: answer.status, data: data };
    }
    if (attempt >= RETRY_LIMIT) {
      onWait(null);
      throw new Refusal("offline");
    }
    if (answer !== null && answer.status === TOO_MANY_REQUESTS) {
      onWait("slow_down", { s: Math.ceil(wait / MS_PER_SECOND) });
    } else {
      onWait("retrying", { n: attempt + 1 });
    }
    await sleep(wait);
    delay = Math.min(delay * 2, LONGEST_RETRY_MS);
  }
}

// Milliseconds to wait before trying again, or null when the answer is final.
function retryWait(answer, data, delay) {
  if (answer === null || RETRIED_STATUSES.has(answer.status)) {
    return delay;
  }
  if (answer.status === TOO_MANY_REQUESTS) {
    const seconds = Number(answer.headers.get("Retry-After"));
    const ms = data && Number.isFinite(data.retry_after_ms) ? data.retry_after_ms
      : seconds * MS_PER_SECOND;
    return Number.isFinite(ms) && ms > 0 ? Math.min(ms, LONGEST_WAIT_MS) : delay;
  }
  // A proxy's own error page (HTML, not our JSON) is a failure of the way there.
  if (answer.status >= 400 && data === null && answer.status !== 404) {
    return delay;
  }
  return null;
}

function when(iso) {
  const locale = document.documentElement.lang === "en" ? "en-GB" : "ru-RU";
  return new Date(iso).toLocaleString(locale,
    { weekday: "long", hour: "2-digit", minute: "2-digit" });
}

// The refusal of a final non-success answer, in plain words.
export function refusal(answer) {
  const data = answer.data || {};
  const code = data.error || "";
  const byCode = {
    unauthorized: "err_auth",
    banned: "err_banned",
    lease_not_found: "err_lease_gone",
    lease_expired: "err_lease_expired",
    lease_completed: "err_lease_done",
    do_not_call: "err_do_not_call",
  };
  if (code === "outside_calling_hours") {
    return data.next_opening
      ? new Refusal("closed_until", { when: when(data.next_opening) }, code, answer.status)
      : new Refusal("closed", {}, code, answer.status);
  }
  if (code === "volunteer_limit") {
    const minutes = Math.max(1, Math.ceil((data.retry_after_ms || MS_PER_MINUTE) / MS_PER_MINUTE));
    return new Refusal("limit", { m: minutes }, code, answer.status);
  }
  if (answer.status === 401) {
    return new Refusal("err_auth", {}, code, answer.status);
  }
  return new Refusal(byCode[code] || "err_page", {}, code, answer.status);
}
