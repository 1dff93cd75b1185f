// Pure helpers of the volunteer page: the number for reading and dialling, the callee's
// clock, and callback times in the callee's zone. No DOM, no network.

import { language, weekday } from "./i18n.js";

const MS_PER_MINUTE = 60000;
const MS_PER_DAY = 86400000;
// minutes between two callback times offered
const CALLBACK_STEP_MINUTES = 15;
// days ahead a callback may be picked (the API accepts up to 60)
const CALLBACK_DAYS = 7;
// minutes from now before the first callback time offered
const CALLBACK_LEAD_MINUTES = 30;
// the callee-local calling window when the lease does not say (the default policy)
export const DEFAULT_WINDOW = { start: "09:00", end: "21:00" };

// "+79161234567" → "+7 916 123-45-67"; other numbers are left as they are.
export function groupNumber(e164) {
  const russian = /^\+7(\d{3})(\d{3})(\d{2})(\d{2})$/.exec(e164);
  if (!russian) {
    return e164;
  }
  return "+7 " + russian[1] + " " + russian[2] + "-" + russian[3] + "-" + russian[4];
}

export function digits(e164) {
  return e164.replace(/\D/g, "");
}

export function links(e164) {
  const plain = digits(e164);
  return {
    tel: "tel:+" + plain,
    whatsapp: "https://wa.me/" + plain,
    telegram: "https://t.me/+" + plain,
  };
}

// The wall clock of `zone` at `instantMs`: {year, month, day, hour, minute, weekday}.
export function wallClock(zone, instantMs) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", weekday: "short",
  }).formatToParts(new Date(instantMs));
  const part = Object.fromEntries(parts.map((p) => [p.type, p.value]));
  const days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  return {
    year: Number(part.year), month: Number(part.month), day: Number(part.day),
    hour: Number(part.hour) % 24, minute: Number(part.minute), weekday: days.indexOf(part.weekday),
  };
}

function pad(value) {
  return String(value).padStart(2, "0");
}

// "14:05, вторник" in the callee's zone.
export function calleeClock(zone, instantMs) {
  try {
    const clock = wallClock(zone, instantMs);
    return pad(clock.hour) + ":" + pad(clock.minute) + ", " + weekday(clock.weekday);
  } catch (error) {
    return "";
  }
}

// Milliseconds `zone` is ahead of UTC at `instantMs`.
function zoneOffsetMs(zone, instantMs) {
  const c = wallClock(zone, instantMs);
  const asUtc = Date.UTC(c.year, c.month - 1, c.day, c.hour, c.minute);
  return asUtc - Math.floor(instantMs / MS_PER_MINUTE) * MS_PER_MINUTE;
}

// The instant (epoch ms) when the wall clock of `zone` reads the given local time.
export function zonedInstant(zone, year, month, day, hour, minute) {
  const asUtc = Date.UTC(year, month - 1, day, hour, minute);
  let instant = asUtc - zoneOffsetMs(zone, asUtc);
  instant = asUtc - zoneOffsetMs(zone, instant);
  return instant;
}

function minutesOf(hhmm) {
  const [hours, minutes] = hhmm.split(":").map(Number);
  return hours * 60 + minutes;
}

// The callee's calling windows as [startMs, endMs) spans: the lease's own list when the
// gateway sends one, else the default hours on each of the next days in their zone.
function windowSpans(zone, nowMs, windows) {
  if (Array.isArray(windows) && windows.length > 0) {
    return windows.map((w) => [Date.parse(w.start), Date.parse(w.end)])
      .filter(([start, end]) => Number.isFinite(start) && Number.isFinite(end));
  }
  const spans = [];
  for (let offset = 0; offset < CALLBACK_DAYS; offset += 1) {
    const d = wallClock(zone, nowMs + offset * MS_PER_DAY);
    const at = (hhmm) => zonedInstant(zone, d.year, d.month, d.day,
      Math.floor(minutesOf(hhmm) / 60), minutesOf(hhmm) % 60);
    spans.push([at(DEFAULT_WINDOW.start), at(DEFAULT_WINDOW.end)]);
  }
  return spans;
}

// Callback choices inside the callee's calling windows, from a little after `nowMs`,
// on the quarter hour of their clock: [{label, times: [{label, iso}]}] per day.
export function callbackDays(zone, nowMs, windows) {
  const earliest = nowMs + CALLBACK_LEAD_MINUTES * MS_PER_MINUTE;
  const step = CALLBACK_STEP_MINUTES * MS_PER_MINUTE;
  const days = new Map();
  for (const [start, end] of windowSpans(zone, nowMs, windows)) {
    const first = Math.ceil(Math.max(start, earliest) / step) * step;
    for (let instant = first; instant < end; instant += step) {
      const clock = wallClock(zone, instant);
      const label = dayLabel(clock);
      if (!days.has(label)) {
        days.set(label, []);
      }
      days.get(label).push({ label: pad(clock.hour) + ":" + pad(clock.minute),
        iso: new Date(instant).toISOString() });
    }
  }
  return Array.from(days, ([label, times]) => ({ label: label, times: times }));
}

function dayLabel(date) {
  const month = new Date(Date.UTC(date.year, date.month - 1, date.day))
    .toLocaleDateString(language() === "ru" ? "ru-RU" : "en-GB",
      { day: "numeric", month: "long", timeZone: "UTC" });
  return weekday(date.weekday) + ", " + month;
}

// "14:32" (minutes:seconds) of a span of milliseconds; "0:00" once it is over.
export function countdown(remainingMs) {
  const seconds = Math.max(0, Math.ceil(remainingMs / 1000));
  return Math.floor(seconds / 60) + ":" + pad(seconds % 60);
}
