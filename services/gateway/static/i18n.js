// Every word the volunteer page shows, Russian first, English second.
// Elements carry data-i18n="key"; dynamic text goes through t(key, params).
// No server message is ever shown: errors are mapped to the "err_*" strings here.

const STRINGS = {
  ru: {
    title: "Обзвон",
    lang_switch: "English",
    signin_title: "Вход",
    signin_label: "Ваш ключ волонтёра (его даёт организатор)",
    signin_hint: "Ключ хранится только на этом устройстве. Кнопка «Выйти» его стирает.",
    signin_button: "Войти",
    signin_empty: "Вставьте ключ, который вам прислал организатор.",
    signout: "Выйти",
    get_number: "Получить номер",
    get_again: "Попробовать ещё раз",
    briefing_title: "Перед первым звонком",
    briefing_intro: "Прочитайте памятку и правила безопасности. Номер появится сразу после этого.",
    safety_title: "Ваша безопасность",
    safety_hide: "Скройте свой номер. Telegram: Настройки → Конфиденциальность → Номер телефона → «Никто», и «Кто может найти меня по номеру» → «Мои контакты». WhatsApp собеседник видит ваш номер всегда: скройте фото, «Сведения» и «Был(а) в сети» (Настройки → Конфиденциальность).",
    safety_separate: "Если можете, звоните с отдельного номера (вторая SIM-карта или виртуальный номер), а не с основного.",
    safety_private: "Не называйте фамилию, город, место работы и учёбы.",
    safety_threat: "Если собеседник угрожает или требует ваши данные — спокойно завершите звонок, ничего о себе не сообщайте, не перезванивайте, отметьте «Больше не звонить» и сообщите организатору.",
    briefing_ok: "Прочитал(а), показать номер",
    guideline: "Памятка",
    guideline_hide: "Скрыть памятку",
    guideline_missing: "Памятку сейчас не удалось загрузить. Главное: спокойно, честно, с уважением; заканчивайте разговор, когда просят.",
    number_label: "Номер",
    call_phone: "Позвонить",
    whatsapp: "WhatsApp",
    telegram: "Telegram",
    copy: "Копировать",
    copied: "Номер скопирован.",
    copy_failed: "Не удалось скопировать. Выделите номер и скопируйте вручную.",
    region: "Регион",
    local_time: "Местное время",
    attempt: "Попытка",
    time_left: "Осталось",
    time_warning: "Время почти вышло — продлите, если ещё звоните.",
    time_over: "Время вышло, номер может достаться другому. Если вы уже позвонили — всё равно отметьте, чем кончился звонок.",
    renew: "Продлить",
    renewed: "Время продлено.",
    outcome_title: "Чем кончился звонок?",
    group_reached: "Дозвонились",
    group_unreached: "Не дозвонились",
    group_wrong: "Номер не тот",
    group_other: "Другое",
    o_conversation: "Поговорили",
    o_refused: "Не захотели говорить",
    o_callback: "Просят перезвонить",
    o_no_answer: "Не берут трубку",
    o_busy: "Занято",
    o_voicemail: "Автоответчик",
    o_channel: "Мессенджер не дал позвонить",
    o_channel_hint: "Номера нет в мессенджере или звонок заблокирован. Человеку это не засчитывается, номер вернётся позже.",
    o_wrong_number: "Ошиблись номером",
    o_not_in_service: "Номер не обслуживается",
    o_skipped: "Пропустить номер",
    o_do_not_call: "Больше не звонить",
    dnc_confirm: "Точно? Этот номер больше никто и никогда не наберёт. Так нужно, если человек попросил больше не звонить или угрожал.",
    dnc_yes: "Да, больше не звонить",
    cancel: "Отмена",
    callback_title: "Когда перезвонить (время собеседника)",
    callback_day: "День",
    callback_time: "Время",
    callback_send: "Записать перезвон",
    callback_none: "В ближайшие дни нет подходящего времени для звонка.",
    recorded: "Записано, спасибо! Можно брать следующий номер.",
    recorded_late: "Записано (время на номер уже вышло, но результат сохранён). Спасибо!",
    asking: "Ищем номер…",
    sending: "Отправляем…",
    retrying: "Нет связи с сервером. Пробуем снова (попытка {n})…",
    slow_down: "Слишком много запросов подряд. Подождите {s} с…",
    offline: "Не получилось связаться с сервером. Проверьте интернет и нажмите кнопку ещё раз.",
    none_now: "Сейчас свободных номеров нет. Попробуйте через минуту.",
    closed_until: "Сейчас звонить нельзя: у людей неподходящее время. Звонки откроются {when}.",
    closed: "Сейчас звонить нельзя: у людей неподходящее время. Попробуйте позже.",
    limit: "Вы взяли много номеров за последний час. Следующий можно будет взять через {m} мин.",
    err_auth: "Ключ не подходит или устарел. Попросите у организатора новый.",
    err_banned: "Организатор закрыл вам доступ. Если это ошибка — напишите ему.",
    err_lease_gone: "Этот номер больше не ваш (его вернули в очередь). Возьмите следующий.",
    err_lease_expired: "Время на номер вышло, продлить уже нельзя. Отметьте результат или возьмите следующий.",
    err_lease_done: "Результат по этому номеру уже записан.",
    err_do_not_call: "Не звоните на этот номер: человек попросил больше не звонить. Номер снят с обзвона.",
    err_page: "Что-то пошло не так. Обновите страницу; если не поможет — напишите организатору.",
    recovered: "Ваш открытый номер восстановлен.",
    weekdays: "воскресенье понедельник вторник среда четверг пятница суббота",
  },
  en: {
    title: "Phone bank",
    lang_switch: "Русский",
    signin_title: "Sign in",
    signin_label: "Your volunteer key (from your organiser)",
    signin_hint: "The key is kept on this device only. “Sign out” erases it.",
    signin_button: "Sign in",
    signin_empty: "Paste the key your organiser sent you.",
    signout: "Sign out",
    get_number: "Get a number",
    get_again: "Try again",
    briefing_title: "Before your first call",
    briefing_intro: "Read the guideline and the safety rules. The number appears right after.",
    safety_title: "Your safety",
    safety_hide: "Hide your own number. Telegram: Settings → Privacy → Phone number → “Nobody”, and “Who can find me by my number” → “My contacts”. On WhatsApp the callee always sees your number: hide your photo, “About” and “Last seen” (Settings → Privacy).",
    safety_separate: "If you can, call from a separate number (a second SIM or a virtual number), not your main one.",
    safety_private: "Do not give your surname, city, workplace or school.",
    safety_threat: "If the callee threatens you or asks for your details, end the call calmly, tell them nothing about yourself, do not call back, mark “Never call again” and tell your organiser.",
    briefing_ok: "I have read it — show the number",
    guideline: "Guideline",
    guideline_hide: "Hide the guideline",
    guideline_missing: "The guideline could not be loaded now. The gist: calm, honest, respectful; end the call when asked.",
    number_label: "Number",
    call_phone: "Call",
    whatsapp: "WhatsApp",
    telegram: "Telegram",
    copy: "Copy",
    copied: "Number copied.",
    copy_failed: "Could not copy. Select the number and copy it by hand.",
    region: "Region",
    local_time: "Their local time",
    attempt: "Attempt",
    time_left: "Time left",
    time_warning: "Time is nearly up — renew if you are still calling.",
    time_over: "Time is up; the number may go to someone else. If you already called, still record how it went.",
    renew: "Renew",
    renewed: "More time granted.",
    outcome_title: "How did the call go?",
    group_reached: "Reached",
    group_unreached: "Not reached",
    group_wrong: "Wrong number",
    group_other: "Other",
    o_conversation: "We talked",
    o_refused: "Did not want to talk",
    o_callback: "Asked to call back",
    o_no_answer: "No answer",
    o_busy: "Busy",
    o_voicemail: "Voicemail",
    o_channel: "The messenger could not call",
    o_channel_hint: "The number is not on the messenger or the call was blocked. It does not count against the person; the number comes back later.",
    o_wrong_number: "Wrong person",
    o_not_in_service: "Number not in service",
    o_skipped: "Skip this number",
    o_do_not_call: "Never call again",
    dnc_confirm: "Sure? Nobody will ever call this number again. Use it when the person asked not to be called or threatened you.",
    dnc_yes: "Yes, never call again",
    cancel: "Cancel",
    callback_title: "When to call back (the callee's time)",
    callback_day: "Day",
    callback_time: "Time",
    callback_send: "Record the callback",
    callback_none: "No suitable calling time in the next days.",
    recorded: "Recorded, thank you! You can take the next number.",
    recorded_late: "Recorded (the time on the number had run out, but the result is kept). Thank you!",
    asking: "Looking for a number…",
    sending: "Sending…",
    retrying: "No connection to the server. Trying again (attempt {n})…",
    slow_down: "Too many requests in a row. Waiting {s} s…",
    offline: "Could not reach the server. Check your connection and press the button again.",
    none_now: "No number is free right now. Try again in a minute.",
    closed_until: "Nobody may be called now: it is the wrong time of day for them. Calling opens {when}.",
    closed: "Nobody may be called now: it is the wrong time of day for them. Try later.",
    limit: "You took many numbers in the last hour. The next one is possible in {m} min.",
    err_auth: "The key does not work or has expired. Ask your organiser for a new one.",
    err_banned: "Your organiser has closed your access. If this is a mistake, write to them.",
    err_lease_gone: "This number is no longer yours (it went back to the queue). Take the next one.",
    err_lease_expired: "The time on this number ran out and cannot be renewed. Record how it went or take the next one.",
    err_lease_done: "The result for this number is already recorded.",
    err_do_not_call: "Do not call this number: the person asked not to be called again. It has been taken off the list.",
    err_page: "Something went wrong. Reload the page; if that does not help, write to your organiser.",
    recovered: "Your open number was restored.",
    weekdays: "Sunday Monday Tuesday Wednesday Thursday Friday Saturday",
  },
};

export const LANGUAGES = ["ru", "en"];
const LANGUAGE_KEY = "phonebank.lang";
let current = LANGUAGES.includes(localStorage.getItem(LANGUAGE_KEY))
  ? localStorage.getItem(LANGUAGE_KEY) : "ru";

export function language() {
  return current;
}

export function setLanguage(code) {
  current = LANGUAGES.includes(code) ? code : "ru";
  localStorage.setItem(LANGUAGE_KEY, current);
  applyStatic(document);
}

export function t(key, params) {
  let text = STRINGS[current][key] ?? STRINGS.ru[key] ?? key;
  for (const [name, value] of Object.entries(params || {})) {
    text = text.replace("{" + name + "}", String(value));
  }
  return text;
}

export function weekday(index) {
  return t("weekdays").split(" ")[index];
}

// Every element with data-i18n gets its text (data-i18n-attr names an attribute instead).
export function applyStatic(root) {
  document.documentElement.lang = current;
  for (const element of root.querySelectorAll("[data-i18n]")) {
    const text = t(element.dataset.i18n);
    if (element.dataset.i18nAttr) {
      element.setAttribute(element.dataset.i18nAttr, text);
    } else {
      element.textContent = text;
    }
  }
}
