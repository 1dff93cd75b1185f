// phonebank volunteer page: sign in, read the guideline once per version, take one number,
// call it, record the outcome, take the next. Same-origin fetches only (CSP default-src
// 'self'); the token and the open lease survive a reload and reach a second tab through
// localStorage, and the server's GET /api/v1/me (when the gateway has it) is the truth.

import { newKey, noteServerTime, refusal, Refusal, request } from "./api.js";
import * as call from "./call.js";
import { applyStatic, language, setLanguage, t } from "./i18n.js";
import * as session from "./session.js";

const TICK_MS = 1000;
// the outcome of a call the messenger could not place (not an attempt on the person)
const CHANNEL_OUTCOME = "unreachable_channel";
const SCREENS = ["signin", "ready", "briefing", "call"];

const $ = (id) => document.getElementById(id);
let lease = null;
let guidelines = {};

function say(key, params, isError) {
  const status = $("status");
  status.textContent = key ? t(key, params) : "";
  status.className = isError ? "error" : "";
}

function waiting(key, params) {
  if (key) {
    say(key, params, false);
    $("status").className = "waiting";
  }
}

function show(screen) {
  for (const name of SCREENS) {
    $(name).hidden = name !== screen;
  }
  $("signout").hidden = screen === "signin";
}

function api(method, path, body, headers) {
  return request(session.token(), method, path, body, headers, waiting);
}

function failed(error) {
  const known = error instanceof Refusal ? error : new Refusal("err_page");
  say(known.key, known.params, true);
  if (known.key === "err_auth" || known.key === "err_banned") {
    session.signOut();
    lease = null;
    show("signin");
  }
}

// --- sign-in and recovery ---------------------------------------------------------------

async function signIn(token) {
  session.setToken(token);
  show("ready");
  say("", {}, false);
  try {
    await recover();
  } catch (error) {
    failed(error);
  }
}

// The open lease after a reload or in a second tab: GET /api/v1/me (200 the lease, 204
// none); a gateway without /me (404) leaves what this device stored as the fallback.
async function recover() {
  const answer = await api("GET", "/api/v1/me");
  if (answer.status === 200 && answer.data && answer.data.lease_id) {
    session.acquireDone();
    return adopt(answer.data, true);
  }
  if (answer.status === 204) {
    session.acquireDone();
    return forget();
  }
  if (answer.status !== 404) {
    throw refusal(answer);
  }
  const stored = session.storedLease();
  if (stored) {
    await adopt(stored, true);
  }
}

function forget() {
  lease = null;
  session.storeLease(null);
  show("ready");
}

// --- getting a number ---------------------------------------------------------------------

async function getNumber() {
  const button = $("get");
  if (button.disabled) {
    return;
  }
  button.disabled = true;
  say("asking", {}, false);
  try {
    let answer = await acquire();
    if (answer.status === 409 && answer.data && answer.data.error === "idempotency_key_used") {
      session.acquireDone();
      answer = await acquire();
    }
    session.acquireDone();
    if (answer.status === 201 || answer.status === 200) {
      await adopt(answer.data, answer.status === 200);
    } else if (answer.status === 204) {
      say("none_now", {}, false);
    } else {
      throw refusal(answer);
    }
  } catch (error) {
    failed(error);
  } finally {
    button.disabled = false;
    button.textContent = t(lease === null ? "get_again" : "get_number");
  }
}

// One press of the button: its Idempotency-Key is kept until an answer arrives, so every
// retry of it (and a reload in the middle) asks for the same lease.
function acquire() {
  const key = session.acquireKey(newKey);
  const body = { languages: language() === "en" ? ["en", "ru"] : ["ru", "en"] };
  return api("POST", "/api/v1/leases", body, { "Idempotency-Key": key });
}

async function adopt(found, recovered) {
  lease = found;
  noteServerTime(lease.server_time_ms);
  session.storeLease(lease);
  const ref = guidelineRef();
  await loadGuideline();
  if (ref && !session.acknowledged(ref)) {
    call.showGuideline($("briefing-guideline"), guidelines[guidelineKey()]);
    show("briefing");
    say("", {}, false);
    return;
  }
  openCall(recovered);
}

function guidelineRef() {
  return lease && lease.guideline ? lease.guideline.ref : null;
}

function guidelineKey() {
  return guidelineRef() + "/" + language();
}

// The guideline in the page's language: the gateway's sanitized HTML, kept per language.
async function loadGuideline() {
  const key = guidelineKey();
  if (!guidelineRef() || guidelines[key]) {
    return;
  }
  try {
    const path = lease.guideline.path + "?language=" + encodeURIComponent(language());
    const answer = await api("GET", path);
    if (answer.status === 200 && answer.data) {
      guidelines[key] = answer.data;
    }
  } catch (error) {
    // the page carries on without it: showGuideline says it could not be loaded
  }
}

function openCall(recovered) {
  call.showLease(lease);
  call.showGuideline($("call-guideline"), guidelines[guidelineKey()]);
  $("dnc-confirm").hidden = true;
  $("callback").hidden = true;
  setOutcomesEnabled(true);
  show("call");
  say(recovered ? "recovered" : "", {}, false);
}

function acknowledge() {
  session.acknowledge(lease.guideline.ref);
  openCall(false);
  $("number").focus();
}

// --- on the lease ----------------------------------------------------------------------

function leasePath(action) {
  return "/api/v1/leases/" + encodeURIComponent(lease.lease_id) + "/" + action;
}

async function onLease(action, body) {
  return api("POST", leasePath(action), body, { "X-Lease-Token": lease.lease_token });
}

async function renew() {
  $("renew").disabled = true;
  try {
    const answer = await onLease("renew", {});
    if (isDoNotCall(answer)) {
      finished("err_do_not_call", true);
      return;
    }
    if (answer.status !== 200) {
      throw refusal(answer);
    }
    lease.deadline_ms = answer.data.deadline_ms;
    noteServerTime(answer.data.server_time_ms);
    session.storeLease(lease);
    call.tick(lease);
    say("renewed", {}, false);
  } catch (error) {
    failed(error);
  } finally {
    $("renew").disabled = false;
  }
}

function setOutcomesEnabled(enabled) {
  for (const button of document.querySelectorAll("#call button")) {
    button.disabled = !enabled;
  }
}

async function complete(outcome, callbackAt) {
  setOutcomesEnabled(false);
  say("sending", {}, false);
  try {
    const body = { outcome: outcome };
    if (lease.lease_receipt) {
      // lets the server record the answer even if it lost the lease meanwhile
      body.lease_receipt = lease.lease_receipt;
    }
    if (callbackAt) {
      body.callback_at = callbackAt;
    }
    const answer = await onLease("complete", body);
    if (answer.status === 200) {
      finished(answer.data.status === "recorded_late" ? "recorded_late" : "recorded");
    } else if (isDoNotCall(answer)) {
      finished("err_do_not_call", true);
    } else if (answer.status === 404) {
      finished("err_lease_gone", true);
    } else {
      throw refusal(answer);
    }
  } catch (error) {
    failed(error);
    setOutcomesEnabled(true);
  }
}

// The number became do-not-call while this volunteer held it: the lease has ended, and
// the page takes the number away with a plain "do not call this number".
function isDoNotCall(answer) {
  return answer.status === 410 && Boolean(answer.data) && answer.data.error === "do_not_call";
}

function finished(key, isError) {
  forget();
  $("get").textContent = t("get_number");
  say(key, {}, Boolean(isError));
  $("get").focus();
}

function pickOutcome(code) {
  $("dnc-confirm").hidden = code !== "do_not_call";
  $("callback").hidden = code !== "callback";
  if (code === "callback") {
    call.fillCallback(lease);
    $("callback").scrollIntoView({ block: "nearest" });
  } else if (code === "do_not_call") {
    $("dnc-confirm").scrollIntoView({ block: "nearest" });
  } else {
    complete(code === "channel" ? CHANNEL_OUTCOME : code);
  }
}

// --- wiring ------------------------------------------------------------------------------

function onStorage(event) {
  if (event.key !== session.LEASE_KEY || !session.token()) {
    return;
  }
  const stored = session.storedLease();
  if (stored === null && lease !== null) {
    lease = null;
    show("ready");
    say("", {}, false);
  } else if (stored !== null && (lease === null || lease.lease_id !== stored.lease_id)) {
    adopt(stored, true);
  }
}

function toggleGuide() {
  const panel = $("guide-panel");
  panel.hidden = !panel.hidden;
  $("guide-toggle").setAttribute("aria-expanded", String(!panel.hidden));
  $("guide-toggle").textContent = t(panel.hidden ? "guideline" : "guideline_hide");
}

async function switchLanguage() {
  setLanguage(language() === "ru" ? "en" : "ru");
  say("", {}, false);
  if (lease !== null) {
    call.showLease(lease);
    await loadGuideline();
    call.showGuideline($("call-guideline"), guidelines[guidelineKey()]);
    call.showGuideline($("briefing-guideline"), guidelines[guidelineKey()]);
  }
}

function wire() {
  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token").value.trim();
    $("token").value = "";
    return value ? signIn(value) : say("signin_empty", {}, true);
  });
  $("lang").addEventListener("click", switchLanguage);
  $("signout").addEventListener("click", () => { session.signOut(); lease = null; show("signin"); say(""); });
  $("get").addEventListener("click", getNumber);
  $("acknowledge").addEventListener("click", acknowledge);
  $("renew").addEventListener("click", renew);
  $("guide-toggle").addEventListener("click", toggleGuide);
  $("copy").addEventListener("click", async () => {
    const copied = await call.copyNumber(lease.number);
    say(copied ? "copied" : "copy_failed", {}, !copied);
  });
  for (const button of document.querySelectorAll("[data-outcome]")) {
    button.addEventListener("click", () => pickOutcome(button.dataset.outcome));
  }
  $("dnc-yes").addEventListener("click", () => complete("do_not_call"));
  $("dnc-no").addEventListener("click", () => { $("dnc-confirm").hidden = true; });
  $("callback-day").addEventListener("change", call.fillTimes);
  $("callback-send").addEventListener("click", () => complete("callback", call.pickedCallback()));
  $("callback-no").addEventListener("click", () => { $("callback").hidden = true; });
  window.addEventListener("storage", onStorage);
  setInterval(() => { if (lease !== null && !$("call").hidden) { call.tick(lease); } }, TICK_MS);
}

function boot() {
  applyStatic(document);
  wire();
  const linked = session.tokenFromLink();
  const token = linked || session.token();
  if (token) {
    signIn(token);
  } else {
    show("signin");
  }
}

boot();
