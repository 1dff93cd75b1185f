// What the page keeps on this device (localStorage, this origin only), so a reload or a
// second tab carries on: the volunteer token, the open lease, the key of an acquire in
// flight, and which guideline versions were acknowledged. Sign-out erases all but the
// acknowledgements and the language.

const TOKEN_KEY = "phonebank.token";
export const LEASE_KEY = "phonebank.lease";
const ACQUIRE_KEY = "phonebank.acquire";
const ACKNOWLEDGED_KEY = "phonebank.acknowledged";

function readJson(key) {
  try {
    return JSON.parse(localStorage.getItem(key) || "null");
  } catch (error) {
    return null;
  }
}

export function token() {
  return localStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value !== token()) {
    localStorage.removeItem(LEASE_KEY);
    localStorage.removeItem(ACQUIRE_KEY);
  }
  localStorage.setItem(TOKEN_KEY, value);
}

export function signOut() {
  for (const key of [TOKEN_KEY, LEASE_KEY, ACQUIRE_KEY]) {
    localStorage.removeItem(key);
  }
}

// The token of a sign-in link (/#token=…), removed from the address bar at once.
export function tokenFromLink() {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  const found = (fragment.get("token") || "").trim();
  if (location.hash) {
    history.replaceState(null, "", location.pathname + location.search);
  }
  return found || null;
}

export function storedLease() {
  const lease = readJson(LEASE_KEY);
  return lease && typeof lease.lease_id === "string" && typeof lease.number === "string"
    ? lease : null;
}

export function storeLease(lease) {
  if (lease === null) {
    localStorage.removeItem(LEASE_KEY);
  } else {
    localStorage.setItem(LEASE_KEY, JSON.stringify(lease));
  }
}

// The Idempotency-Key of the acquire in flight: kept until its answer arrives, so a
// retry (or a reload mid-request) asks for the same lease, not a second one.
export function acquireKey(makeKey) {
  let key = localStorage.getItem(ACQUIRE_KEY);
  if (!key) {
    key = makeKey();
    localStorage.setItem(ACQUIRE_KEY, key);
  }
  return key;
}

export function acquireDone() {
  localStorage.removeItem(ACQUIRE_KEY);
}

export function acknowledged(ref) {
  const refs = readJson(ACKNOWLEDGED_KEY);
  return Array.isArray(refs) && refs.includes(ref);
}

export function acknowledge(ref) {
  const refs = readJson(ACKNOWLEDGED_KEY);
  const list = Array.isArray(refs) ? refs : [];
  if (!list.includes(ref)) {
    list.push(ref);
  }
  localStorage.setItem(ACKNOWLEDGED_KEY, JSON.stringify(list));
}
