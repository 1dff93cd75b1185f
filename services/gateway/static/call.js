// The call screen: the number and its links, the callee's clock, the countdown, the
// guideline panel and the callback picker. Writes server text with textContent only;
// the guideline's HTML is the gateway's sanitized rendering (gateway/guideline_html.py).

import { serverNow } from "./api.js";
import { language, t } from "./i18n.js";
import { callbackDays, calleeClock, countdown, groupNumber, links } from "./phone.js";

// milliseconds before the lease's end when the countdown turns into a warning
const WARN_BEFORE_MS = 120000;

const $ = (id) => document.getElementById(id);

export function showLease(lease) {
  const grouped = groupNumber(lease.number);
  const to = links(lease.number);
  $("number").textContent = grouped;
  $("number").href = to.tel;
  $("dial").href = to.tel;
  $("whatsapp").href = to.whatsapp;
  $("telegram").href = to.telegram;
  const region = lease.region || {};
  $("region").textContent = language() === "ru"
    ? (region.name_ru || region.name || region.code || "")
    : (region.name || region.name_ru || region.code || "");
  $("attempt").textContent = String(lease.attempt || 1);
  tick(lease);
}

// Live parts: the callee's clock and the countdown; true once the time is up.
export function tick(lease) {
  const now = serverNow();
  $("localtime").textContent = calleeClock(lease.callee_zone, now);
  const remaining = lease.deadline_ms - now;
  $("countdown").textContent = countdown(remaining);
  const timer = $("timer");
  const note = $("timer-note");
  timer.classList.toggle("warning", remaining > 0 && remaining <= WARN_BEFORE_MS);
  timer.classList.toggle("over", remaining <= 0);
  $("renew").hidden = remaining <= 0;
  if (remaining <= 0) {
    note.textContent = t("time_over");
  } else if (remaining <= WARN_BEFORE_MS) {
    note.textContent = t("time_warning");
  }
  note.hidden = remaining > WARN_BEFORE_MS;
  return remaining <= 0;
}

// Put the guideline into `target`: the gateway's sanitized HTML (one translation, or a
// `texts` list of them from an older gateway), else its Markdown as plain text.
export function showGuideline(target, guideline) {
  const texts = guideline && Array.isArray(guideline.texts) ? guideline.texts : [];
  const text = guideline && !guideline.texts ? guideline
    : texts.find((item) => item.language === language()) || texts[0];
  target.classList.toggle("plain", Boolean(text && !text.html));
  if (!text) {
    target.textContent = t("guideline_missing");
  } else if (text.html) {
    target.innerHTML = text.html;
  } else {
    target.textContent = text.body || "";
  }
}

export async function copyNumber(number) {
  try {
    await navigator.clipboard.writeText(number);
    return true;
  } catch (error) {
    const field = document.createElement("textarea");
    field.value = number;
    field.setAttribute("readonly", "");
    document.body.appendChild(field);
    field.select();
    const done = document.execCommand("copy");
    field.remove();
    return done;
  }
}

function option(value, label) {
  const element = document.createElement("option");
  element.value = value;
  element.textContent = label;
  return element;
}

let offered = [];

// Fill the day and time lists with times inside the callee's calling window.
export function fillCallback(lease) {
  offered = callbackDays(lease.callee_zone, serverNow(), lease.calling_windows);
  const day = $("callback-day");
  day.replaceChildren(...offered.map((item, index) => option(String(index), item.label)));
  $("callback-none").hidden = offered.length > 0;
  $("callback-send").disabled = offered.length === 0;
  fillTimes();
}

export function fillTimes() {
  const chosen = offered[Number($("callback-day").value)] || { times: [] };
  $("callback-time").replaceChildren(...chosen.times.map((item) => option(item.iso, item.label)));
}

// The picked callback instant for the API (ISO-8601 UTC), or "" if none.
export function pickedCallback() {
  return $("callback-time").value || "";
}
