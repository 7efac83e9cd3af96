// The caregiver page: open and acknowledged alerts for the caller's residents, live from the hub's
// event stream, with acknowledge and resolve and each alert's history in words; a form to report
// something by hand; a grid worker's visits to record; and each resident's last activity and what
// caregivers' verdicts changed in their alerting. Plain DOM, no build step: the hub serves these files as they are.

import { LABELS, initialLanguage, fill } from "./labels.js";

const API = "/api/v1";
const TOKEN_KEY = "hub.token"; // sessionStorage: the token goes when the tab closes
const LANGUAGE_KEY = "hub.language"; // localStorage: the language choice stays on this phone
const SEVERITY_RANK = { info: 0, warning: 1, critical: 2 };
const STATE_RANK = { open: 0, acknowledged: 1, resolved: 2 };
const OUTCOMES = ["resident_ok", "visited", "hospital", "false_alarm", "device_fault"];
const REPORT_CATEGORIES = ["resident_unwell", "hazard", "broken_device", "other"];
// The hub sends a keepalive comment well within this; a stream silent for longer is a dead connection
// that a phone switching networks may never report as closed.
const STREAM_SILENCE_MS = 60_000;
const RECONNECT_MAX_S = 30;
const CLOCK_REFRESH_MS = 30_000;
const ACTIVITY_REFRESH_MS = 60_000;
const ACTIVITY_PARALLEL = 4;
const EVIDENCE_SHOWN = 4;
const VISIT_OUTCOMES = ["ok", "concern", "not_home", "referred"];
const VISIT_NOTE_MAX = 500; // as the hub caps it
const VISITS_REFRESH_MS = 60_000;
const LOCATION_WAIT_MS = 10_000; // a phone without a fix is not kept waiting: the visit is saved without it

const $ = (id) => document.getElementById(id);

const state = {
  language: initialLanguage(localStorage.getItem(LANGUAGE_KEY), navigator.language),
  me: null,
  alerts: new Map(), // id -> alert, open and acknowledged only
  finished: new Map(), // id -> the cycle seen resolved: a late, older event must not bring one back
  resolved: new Map(), // id -> alert, recently resolved: shown to those who may reopen them
  residents: [],
  residentsLoaded: false,
  activity: new Map(), // resident id -> the activity answer
  histories: new Map(), // alert id -> {version, detail}: its history as read for that version of it
  sensitivityOpen: new Set(), // resident ids whose sensitivity changes are unfolded
  visits: new Map(), // id -> open visit (scheduled or overdue)
  session: null, // AbortController of the signed-in session: aborting it stops the stream and timers
  banner: null, // {key, values} of the banner shown, so a language switch can re-render it
  linked: null, // the id of the alert the page was opened for (/#alert=<id>), once shown
  linkedNote: null, // {key, values} of what was said about it when it is not in the list
  loginError: null, // likewise for the sign-in form's error
};

const t = (key, values) => fill(LABELS[state.language][key] ?? key, values);
const label = (group, key) => LABELS[state.language][group][key] ?? key;

// --- talking to the hub -------------------------------------------------------------------------

class SessionEnded extends Error {}

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

class NetworkError extends Error {}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

async function send(path, { method = "GET", body, signal, bearer = token(), accept = "application/json" } = {}) {
  const headers = { Accept: accept, Authorization: `Bearer ${bearer}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  try {
    return await fetch(API + path, {
      method, headers, signal, cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new NetworkError(String(error));
  }
}

async function errorDetail(response) {
  try {
    const body = await response.json();
    const detail = body.detail ?? body;
    // FastAPI's validation errors are a list of {loc, msg}; anything else is shown as it came.
    if (Array.isArray(detail)) return detail.map((item) => item.msg ?? JSON.stringify(item)).join("; ");
    return typeof detail === "string" ? detail : JSON.stringify(detail);
  } catch {
    return `HTTP ${response.status}`;
  }
}

/** JSON from an API route of the signed-in session; a 401 ends the session and goes back to sign-in. */
async function api(path, options = {}) {
  const response = await send(path, options);
  if (response.status === 401) {
    endSession("sessionEnded");
    throw new SessionEnded();
  }
  if (!response.ok) throw new ApiError(response.status, await errorDetail(response));
  return response.json();
}

/** What went wrong, as a label key and its values (so it can be shown again in the other language). */
function describeError(error) {
  if (error instanceof NetworkError) return { key: "networkDown" };
  if (error instanceof ApiError && error.status === 403) return { key: "forbidden" };
  return { key: "requestFailed", values: { detail: error.message } };
}

// --- signing in and out --------------------------------------------------------------------------

async function signIn(candidate) {
  hideLoginError();
  let response;
  try {
    response = await send("/me", { bearer: candidate });
  } catch (failure) {
    showLoginError(describeError(failure));
    return;
  }
  if (response.status === 401 || response.status === 403) {
    showLoginError({ key: "loginFailed" });
    return;
  }
  if (!response.ok) {
    showLoginError({ key: "requestFailed", values: { detail: await errorDetail(response) } });
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, candidate);
  $("token").value = ""; // the token lives in sessionStorage only, not in the page
  startSession(await response.json());
}

function showLoginError(error) {
  state.loginError = error;
  const node = $("login-error");
  node.textContent = t(error.key, error.values);
  node.hidden = false;
}

function hideLoginError() {
  state.loginError = null;
  $("login-error").hidden = true;
}

function showLogin(messageKey) {
  $("signed-in").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  if (messageKey) showLoginError({ key: messageKey });
  $("token").focus();
}

/** The signed-in view; `me` is null when resuming a saved token, and is read with the first list. */
function startSession(me) {
  state.me = me;
  state.session = new AbortController();
  const { signal } = state.session;
  $("login").hidden = true;
  hideLoginError();
  $("signed-in").hidden = false;
  $("logout").hidden = false;
  renderWhoami();
  renderAlerts();
  renderResidents();
  renderVisits();
  followAlerts(signal);
  repeat(signal, VISITS_REFRESH_MS, () => loadVisits(signal).catch(reportBackgroundError));
  repeat(signal, CLOCK_REFRESH_MS, renderTimes);
  repeat(signal, ACTIVITY_REFRESH_MS, () => loadActivity(signal).catch(reportBackgroundError));
}

function endSession(messageKey) {
  state.session?.abort();
  state.session = null;
  sessionStorage.removeItem(TOKEN_KEY);
  state.me = null;
  state.alerts.clear();
  state.finished.clear();
  state.resolved.clear();
  state.residents = [];
  state.residentsLoaded = false;
  state.activity.clear();
  state.visits.clear();
  $("visits").replaceChildren();
  state.linked = null;
  hideLinkedNote();
  $("alerts").replaceChildren();
  $("residents").replaceChildren();
  renderResolved();
  hideBanner();
  showLogin(messageKey);
}

function repeat(signal, intervalMs, action) {
  const timer = setInterval(action, intervalMs);
  signal.addEventListener("abort", () => clearInterval(timer), { once: true });
}

/** Shows why an action failed in its card's error line; true when there is nothing to show (the session
 * ended or the request was called off), so the caller leaves its card as it is. */
function showFailure(failure, line) {
  if (failure instanceof SessionEnded || failure.name === "AbortError") return true;
  const { key, values } = describeError(failure);
  line.textContent = t(key, values);
  line.hidden = false;
  return false;
}

function reportBackgroundError(error) {
  if (error instanceof SessionEnded || error.name === "AbortError") return;
  const { key, values } = describeError(error);
  showBanner(key, values);
}

function isDisconnection(error) {
  // A fetch that cannot connect, a stream cut mid-read (TypeError from the reader) or one we aborted
  // after too long a silence: all mean "reconnect", not "the hub refused".
  return error instanceof NetworkError || error instanceof TypeError || error.name === "AbortError";
}

// --- the live alert stream -----------------------------------------------------------------------

/** Follow the stream for as long as the session lasts, reconnecting with back-off. After every
 * (re)connect the list is fetched again, so whatever changed while disconnected is shown. */
async function followAlerts(signal) {
  let failures = 0;
  let firstLoad = true;
  while (!signal.aborted) {
    let why = { key: "reconnecting" }; // the hub ended the stream (it is restarting, or we fell behind)
    try {
      await readStream(signal, async () => {
        failures = 0;
        hideBanner();
        // Who and whose residents are extras: their failure is shown, but must not keep alerts away.
        api("/me", { signal }).then((me) => {
          state.me = me;
          renderWhoami();
          return loadResolved(signal);
        }).catch(reportBackgroundError);
        loadResidents(signal).catch(reportBackgroundError);
        loadVisits(signal).catch(reportBackgroundError);
        await loadAlerts(signal, { announce: !firstLoad });
        firstLoad = false;
      });
    } catch (error) {
      if (error instanceof SessionEnded || signal.aborted) return;
      why = isDisconnection(error) ? null : describeError(error);
    }
    if (signal.aborted) return;
    failures += 1;
    // 1, 2, 4 … 30 s, with jitter so a hub restart is not met by every phone in the same second.
    const delayS = Math.min(RECONNECT_MAX_S, 2 ** (failures - 1)) * (0.75 + Math.random() / 2);
    await countDown(delayS, signal, why);
  }
}

/** Wait before reconnecting, saying why: the hub cannot be reached (with the seconds left), or what
 * it answered instead. */
async function countDown(seconds, signal, why) {
  const end = Date.now() + seconds * 1000;
  while (!signal.aborted && Date.now() < end) {
    if (why) showBanner(why.key, why.values);
    else showBanner("offline", { s: Math.max(1, Math.ceil((end - Date.now()) / 1000)) });
    await new Promise((resolve) => setTimeout(resolve, Math.min(1000, end - Date.now())));
  }
  if (!signal.aborted && !why) showBanner("reconnecting");
}

async function readStream(signal, onOpen) {
  // fetch() rather than EventSource: EventSource cannot send the Authorization header, and a token in a
  // URL ends up in logs and browser history.
  const connection = new AbortController();
  const stop = () => connection.abort();
  signal.addEventListener("abort", stop, { once: true });
  let silence;
  const heard = () => {
    clearTimeout(silence);
    silence = setTimeout(stop, STREAM_SILENCE_MS);
  };
  try {
    heard();
    const response = await send("/alerts/stream", { signal: connection.signal, accept: "text/event-stream" });
    if (response.status === 401) {
      endSession("sessionEnded");
      throw new SessionEnded();
    }
    if (!response.ok || !response.body) throw new ApiError(response.status, await errorDetail(response));
    // The list is read once the stream is open: an alert raised in between arrives on the stream.
    await onOpen();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    const feed = eventStreamParser((event, data) => {
      if (event === "alert") applyAlert(JSON.parse(data), { announce: true });
    });
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      heard();
      feed(value);
      renderAlerts();
      renderResolved();
    }
  } finally {
    clearTimeout(silence);
    signal.removeEventListener("abort", stop);
  }
}

/** A text/event-stream parser (the WHATWG rules for fields, comments and dispatch on a blank line). */
function eventStreamParser(dispatch) {
  let pending = "";
  let event = "";
  let data = [];
  return (chunk) => {
    const lines = (pending + chunk).split(/\r\n|\r|\n/);
    pending = lines.pop();
    for (const line of lines) {
      if (line === "") {
        if (data.length) dispatch(event || "message", data.join("\n"));
        event = "";
        data = [];
      } else if (!line.startsWith(":")) {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
      }
    }
  };
}

// --- alerts ------------------------------------------------------------------------------------------

/** Whether `incoming` is a later version of the same alert than `current`. Alerts only move forward
 * (open → acknowledged → resolved; repeats raise last_seen and count), so an event older than the list
 * read after it is recognised and dropped. */
function isNewer(incoming, current) {
  // A supervisor's reopening starts a new cycle, in which the alert moves forward again.
  const byCycle = incoming.cycle - current.cycle;
  if (byCycle !== 0) return byCycle > 0;
  const byState = STATE_RANK[incoming.state] - STATE_RANK[current.state];
  if (byState !== 0) return byState > 0;
  const byLastSeen = Date.parse(incoming.last_seen) - Date.parse(current.last_seen);
  if (byLastSeen !== 0) return byLastSeen > 0;
  return incoming.count >= current.count;
}

function applyAlert(alert, { announce }) {
  if ((state.finished.get(alert.id) ?? -1) >= alert.cycle) return;
  const current = state.alerts.get(alert.id);
  if (current && !isNewer(alert, current)) return;
  state.resolved.delete(alert.id);
  if (alert.state === "resolved") {
    state.finished.set(alert.id, alert.cycle);
    if (state.me?.may_reopen) state.resolved.set(alert.id, alert);
    state.alerts.delete(alert.id);
    return;
  }
  state.alerts.set(alert.id, alert);
  if (!announce) return;
  if (!current) announceAlert("newAlert", alert);
  else if (alert.count > current.count) announceAlert("updatedAlert", alert);
}

async function loadAlerts(signal, { announce }) {
  const list = await api("/alerts?state=open&state=acknowledged&limit=200", { signal });
  const listed = new Set(list.map((alert) => alert.id));
  // Gone from the list: resolved (or out of the caller's scope) while we were not listening.
  for (const id of [...state.alerts.keys()]) if (!listed.has(id)) state.alerts.delete(id);
  for (const alert of list) applyAlert(alert, { announce });
  renderAlerts();
  await showLinkedAlert(signal);
}

// --- the alert a notification links to (/#alert=<id>) -------------------------------------------------

function linkedAlertId() {
  const match = /^#alert=(\d{1,18})$/.exec(location.hash);
  return match ? Number(match[1]) : null;
}

/** Bring the linked alert into view, once per link: read it when it is not in the open list (the
 * caller may see it, or the API answers 404), and say how it ended when it is resolved already. */
async function showLinkedAlert(signal) {
  const id = linkedAlertId();
  if (id === null || state.linked === id) return;
  state.linked = id;
  if (!state.alerts.has(id)) {
    let alert;
    try {
      alert = await api(`/alerts/${id}`, { signal });
    } catch (error) {
      if (error instanceof SessionEnded || error.name === "AbortError") throw error;
      showLinkedNote({ key: "linkedMissing", values: { id } });
      return;
    }
    if (alert.state === "resolved") {
      showLinkedNote({ key: "linkedResolved", values: { id, who: alert.resolved_by, outcome: alert.outcome } });
      return;
    }
    applyAlert(alert, { announce: false });
    renderAlerts();
  }
  hideLinkedNote();
  const card = document.querySelector(`#alerts [data-alert-id="${id}"]`);
  if (!card) return;
  card.dataset.linked = "true";
  card.setAttribute("aria-current", "true");
  card.tabIndex = -1;
  card.scrollIntoView({ block: "center" });
  card.focus();
}

function showLinkedNote(note) {
  state.linkedNote = note;
  const { key, values } = note;
  const shown = values.outcome ? { ...values, outcome: label("outcomes", values.outcome) } : values;
  $("linked-note").textContent = t(key, shown);
  $("linked-note").hidden = false;
}

function hideLinkedNote() {
  state.linkedNote = null;
  $("linked-note").hidden = true;
}

function sortedAlerts() {
  return [...state.alerts.values()].sort(
    (a, b) => SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity]
      || Date.parse(b.last_seen) - Date.parse(a.last_seen)
      || b.id - a.id,
  );
}

async function act(id, card, path, body) {
  const alert = state.alerts.get(id);
  if (!alert) return;
  const error = card.querySelector(".card-error");
  error.hidden = true;
  const buttons = card.querySelectorAll("button");
  buttons.forEach((button) => { button.disabled = true; });
  card.setAttribute("aria-busy", "true");
  try {
    const updated = await api(`/alerts/${alert.id}/${path}`, { method: "POST", body, signal: state.session?.signal });
    applyAlert(updated, { announce: false });
    renderAlerts();
    // The acknowledge button is gone now: keep the keyboard on the card's next step.
    if (path === "acknowledge" && card.isConnected) card.querySelector(".resolve-summary").focus();
  } catch (failure) {
    if (showFailure(failure, error)) return;
  } finally {
    buttons.forEach((button) => { button.disabled = false; });
    card.removeAttribute("aria-busy");
  }
}

// --- residents -----------------------------------------------------------------------------------

async function loadResidents(signal) {
  state.residents = await api("/residents", { signal });
  state.residentsLoaded = true;
  renderResidents();
  renderAlerts(); // names for the cards
  await loadActivity(signal);
}

async function loadActivity(signal) {
  const queue = [...state.residents];
  let failure = null;
  const worker = async () => {
    while (queue.length && !signal.aborted) {
      const resident = queue.shift();
      // limit=1: the page shows the detector's view, not the timeline of readings that comes with it.
      const path = `/residents/${encodeURIComponent(resident.id)}/activity?limit=1`;
      try {
        state.activity.set(resident.id, await api(path, { signal }));
      } catch (error) {
        if (error instanceof SessionEnded || error.name === "AbortError") throw error;
        failure = error; // one resident's failure must not hide the others' activity
      }
    }
  };
  await Promise.all(Array.from({ length: ACTIVITY_PARALLEL }, worker));
  renderResidents();
  if (failure) throw failure;
}

function residentById(id) {
  return state.residents.find((resident) => resident.id === id);
}

// --- visits (巡查) ----------------------------------------------------------------------------------

async function loadVisits(signal) {
  const open = await api("/visits?status=scheduled&status=overdue", { signal });
  state.visits = new Map(open.map((visit) => [visit.id, visit]));
  renderVisits();
}

/** Where the phone is, if its user allows it and it has a fix soon; null otherwise (the visit or report
 * is saved all the same). */
function phoneLocation() {
  if (!navigator.geolocation) return Promise.resolve(null);
  return new Promise((resolve) => navigator.geolocation.getCurrentPosition(
    ({ coords }) => resolve({ lat: coords.latitude, lon: coords.longitude, accuracy_m: coords.accuracy }),
    () => resolve(null),
    { enableHighAccuracy: true, timeout: LOCATION_WAIT_MS, maximumAge: 60_000 },
  ));
}

async function recordVisit(id, card, form) {
  const error = card.querySelector(".card-error");
  error.hidden = true;
  const outcome = form.querySelector(".outcome");
  if (!outcome.value) {
    error.textContent = t("outcomeRequired");
    error.hidden = false;
    outcome.focus();
    return;
  }
  const button = form.querySelector("button");
  button.disabled = true;
  card.setAttribute("aria-busy", "true");
  try {
    const body = { resident_seen: form.querySelector(".seen").checked, outcome: outcome.value,
                   note: form.querySelector(".note").value.trim() };
    const where = form.querySelector(".share-location").checked ? await phoneLocation() : null;
    if (where) Object.assign(body, { lat: where.lat, lon: where.lon });
    const done = await api(`/visits/${id}/record`, { method: "POST", body, signal: state.session?.signal });
    $("announcer").textContent = t("visitRecorded", { name: done.resident_name || done.resident });
    await loadVisits(state.session.signal); // the next visit, planned from this one
  } catch (failure) {
    if (showFailure(failure, error)) return;
  } finally {
    button.disabled = false;
    card.removeAttribute("aria-busy");
  }
}

/** Built once per visit, like an alert's card, so a refresh never loses what is being typed. */
function buildVisitCard(visit) {
  const id = visit.id;
  const card = element("li", "card visit");
  card.dataset.visitId = String(id);
  const top = element("div", "card-top");
  top.append(element("h3", "who"), element("span", "state"));
  const panel = element("details", "resolve-panel");
  const form = element("form", "resolve");
  const seen = Object.assign(element("input", "seen"), { type: "checkbox", checked: true });
  const outcome = element("select", "outcome");
  outcome.append(element("option"), ...VISIT_OUTCOMES.map((value) => Object.assign(element("option"), { value })));
  outcome.options[0].value = "";
  const note = Object.assign(element("input", "note"), { maxLength: VISIT_NOTE_MAX });
  const share = Object.assign(element("input", "share-location"), { type: "checkbox" });
  // Each control with its label (words set by updateVisitCard): a checkbox beside it, the others below.
  const labelled = (control, name, beside) => {
    const words = element("label");
    words.htmlFor = control.id = `visit-${id}-${name}`;
    if (!beside) return form.append(words, control);
    const row = element("div", "check-row");
    row.append(control, words);
    form.append(row);
  };
  labelled(seen, "seen", true);
  labelled(outcome, "outcome");
  labelled(note, "note");
  labelled(share, "location", true);
  form.append(element("button", "record-button"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    recordVisit(id, card, form);
  });
  panel.append(element("summary", "resolve-summary"), form);
  const error = element("p", "card-error");
  error.setAttribute("role", "alert");
  error.hidden = true;
  card.append(top, element("p", "where"), element("p", "when"), error, panel);
  return card;
}

function updateVisitCard(card, visit) {
  card.className = `card visit severity-${visit.status === "overdue" ? "warning" : "info"}`;
  card.dataset.status = visit.status;
  const part = (name) => card.querySelector(`.${name}`);
  part("who").textContent = visit.resident_name || visit.resident;
  part("state").textContent = label("visitStates", visit.status);
  part("where").textContent = place(visit.building_name, visit.building, visit.unit);
  part("when").textContent = t("dueBy", { when: clockTime(Date.parse(visit.due), visit.timezone) });
  part("resolve-summary").textContent = t("recordVisit");
  const [seen, outcome, note, share] = card.querySelectorAll(".resolve label");
  seen.textContent = t("residentSeen");
  outcome.textContent = t("visitOutcomeLabel");
  note.textContent = t("noteLabel");
  share.textContent = t("shareLocation");
  const options = part("outcome").options;
  options[0].textContent = t("chooseOutcome");
  for (let i = 1; i < options.length; i += 1) options[i].textContent = label("visitOutcomes", options[i].value);
  part("record-button").textContent = t("saveVisit");
}

function renderVisits() {
  const list = $("visits");
  const cards = new Map([...list.children].map((card) => [Number(card.dataset.visitId), card]));
  const visits = [...state.visits.values()]; // soonest due first, as the hub lists them
  for (const [id, card] of cards) if (!state.visits.has(id)) card.remove();
  visits.forEach((visit, index) => {
    const card = cards.get(visit.id) ?? buildVisitCard(visit);
    updateVisitCard(card, visit);
    if (list.children[index] !== card) list.insertBefore(card, list.children[index] ?? null);
  });
  $("visits-section").hidden = visits.length === 0;
  const overdue = visits.filter((visit) => visit.status === "overdue").length;
  $("visit-count").textContent = overdue ? String(overdue) : "";
}

// --- rendering ----------------------------------------------------------------------------------

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function relativeTime(iso) {
  const minutes = Math.floor((Date.now() - Date.parse(iso)) / 60_000);
  if (minutes < 1) return t("justNow");
  if (minutes < 60) return t("minutesAgo", { n: minutes });
  if (minutes < 48 * 60) return t("hoursAgo", { n: Math.floor(minutes / 60) });
  return t("daysAgo", { n: Math.floor(minutes / 1440) });
}

// Times are read in the community's zone (the API's `timezone`), not the browser's, and say which, as
// `hub alerts` and the notifications write them: the same fall never reads 03:50 here and 11:50 there.
function zoneLabel(ms, zone) {
  const name = new Intl.DateTimeFormat("en-US", { timeZone: zone, timeZoneName: "shortOffset" })
    .formatToParts(new Date(ms)).find((part) => part.type === "timeZoneName");
  return (name?.value || "GMT").replace("GMT", "UTC");
}

function dayIn(ms, zone) {
  return new Date(ms).toLocaleDateString("en-CA", { timeZone: zone });
}

function clockTime(ms, zone) {
  const locale = state.language === "zh" ? "zh-CN" : "en-GB";
  const options = { timeZone: zone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  if (dayIn(ms, zone) !== dayIn(Date.now(), zone)) Object.assign(options, { month: "numeric", day: "numeric" });
  return `${new Date(ms).toLocaleString(locale, options)} ${zoneLabel(ms, zone)}`;
}

function fullTime(ms, zone) {
  const locale = state.language === "zh" ? "zh-CN" : "en-GB";
  const text = new Date(ms).toLocaleString(locale, {
    timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
  return `${text} ${zoneLabel(ms, zone)}`;
}

function duration(seconds) {
  if (seconds < 120) return t("seconds", { n: Math.round(seconds) });
  if (seconds < 2 * 3600) return t("minutes", { n: Math.round(seconds / 60) });
  return t("hours", { n: Math.round(seconds / 3600) });
}

function timeElement(iso, zone, className) {
  const node = element("time", className, relativeTime(iso));
  node.dateTime = iso;
  node.title = fullTime(Date.parse(iso), zone);
  return node;
}

function renderTimes() {
  for (const node of document.querySelectorAll("time[datetime]:not(.clock)")) { // .clock: a time of day
    node.textContent = relativeTime(node.dateTime);
  }
}

function evidenceValue(key, value, zone) {
  if (typeof value === "number" && (key.endsWith("_ms") || key.endsWith("_ts"))) return clockTime(value, zone);
  if (typeof value === "number" && key.endsWith("_s")) return duration(value);
  if (key === "battery") return `${value}%`;
  if (key === "confidence" && typeof value === "number") return `${Math.round(value * 100)}%`;
  return String(value);
}

function evidenceSummary(evidence, zone) {
  const names = LABELS[state.language].evidence;
  return Object.keys(names)
    .filter((key) => evidence?.[key] !== undefined && evidence[key] !== null)
    .slice(0, EVIDENCE_SHOWN)
    .map((key) => `${names[key]} ${evidenceValue(key, evidence[key], zone)}`)
    .join(" · ");
}

// Names where people expect them (the API's `names`, from the registry); the ids stay in the card's
// tooltips, for whoever has to look them up.
function whoFor(alert) {
  if (alert.names?.resident) return alert.names.resident;
  const resident = alert.resident && residentById(alert.resident);
  if (resident) return resident.name;
  if (alert.household) {
    const names = state.residents.filter((r) => r.household === alert.household).map((r) => r.name);
    if (names.length) return names.join("、");
  }
  if (alert.device) return `${t("device")} ${alert.device}`;
  return alert.subject;
}

function placeFor(alert) {
  const resident = (alert.resident && residentById(alert.resident))
    || state.residents.find((r) => alert.household && r.household === alert.household);
  return place(alert.names?.building, alert.building, alert.names?.unit || resident?.unit || alert.household);
}

function place(buildingName, building, unit) {
  const parts = [];
  if (buildingName || building) parts.push(buildingName || t("building", { b: building }));
  if (unit) parts.push(t("household", { h: unit }));
  return parts.join(" · ");
}

function ids(pairs) {
  return pairs.filter(([, value]) => value).map(([key, value]) => `${key}: ${value}`).join("\n");
}

/** A card's parts are built once and updated in place, so a re-render never loses a chosen outcome, a
 * typed note or the keyboard focus. */
function buildCard(alert) {
  const id = alert.id;
  const card = element("li", "card");
  card.dataset.alertId = String(id);
  const article = element("article");
  article.setAttribute("aria-labelledby", `alert-${id}-title`);
  const top = element("div", "card-top");
  const severity = element("span", "severity");
  const title = element("h3", "kind");
  title.id = `alert-${id}-title`;
  const status = element("span", "state");
  top.append(severity, title, status);
  const who = element("p", "who");
  const where = element("p", "where");
  const when = element("p", "when");
  const evidence = element("p", "evidence");
  const handled = element("p", "handled");
  const error = element("p", "card-error");
  error.setAttribute("role", "alert");
  error.hidden = true;

  const acknowledge = element("button", "acknowledge");
  acknowledge.type = "button";
  acknowledge.addEventListener("click", () => act(id, card, "acknowledge"));

  // Resolving is the second step: folded away so a phone screen shows more alerts, one tap to open.
  const resolvePanel = element("details", "resolve-panel");
  const resolveSummary = element("summary", "resolve-summary");
  const resolve = element("form", "resolve");
  const outcomeLabel = element("label");
  outcomeLabel.htmlFor = `alert-${id}-outcome`;
  const outcome = element("select", "outcome");
  outcome.id = outcomeLabel.htmlFor;
  outcome.name = "outcome";
  outcome.append(element("option"), ...OUTCOMES.map((value) => Object.assign(element("option"), { value })));
  outcome.options[0].value = "";
  const noteLabel = element("label");
  noteLabel.htmlFor = `alert-${id}-note`;
  const note = element("input", "note");
  note.id = noteLabel.htmlFor;
  note.name = "note";
  note.maxLength = 1000;
  const submit = element("button", "resolve-button");
  submit.type = "submit";
  resolve.append(outcomeLabel, outcome, noteLabel, note, submit);
  resolvePanel.append(resolveSummary, resolve);
  resolve.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!outcome.value) {
      error.textContent = t("outcomeRequired");
      error.hidden = false;
      outcome.focus();
      return;
    }
    act(id, card, "resolve", { outcome: outcome.value, note: note.value.trim() });
  });

  // The history is read only when someone unfolds it: most cards are acted on without it.
  const historyPanel = element("details", "history-panel");
  const historySummary = element("summary", "history-summary");
  historyPanel.append(historySummary, element("ol", "history"));
  historyPanel.addEventListener("toggle", () => {
    const current = state.alerts.get(id);
    if (historyPanel.open && current) showHistory(card, current);
  });

  const actions = element("div", "actions");
  actions.append(acknowledge, resolvePanel);
  article.append(top, who, where, when, evidence, handled, historyPanel, error, actions);
  card.append(article);
  return card;
}

function updateCard(card, alert) {
  card.className = `card severity-${alert.severity} state-${alert.state}`;
  card.dataset.state = alert.state;
  card.dataset.kind = alert.kind;
  const part = (name) => card.querySelector(`.${name}`);
  part("severity").textContent = label("severities", alert.severity);
  part("kind").textContent = label("kinds", alert.kind);
  part("state").textContent = label("states", alert.state);
  const zone = alert.names.timezone;
  part("who").textContent = whoFor(alert);
  part("who").title = ids([["resident", alert.resident], ["device", alert.device], ["subject", alert.subject]]);
  part("where").textContent = placeFor(alert);
  part("where").title = ids([["building", alert.building], ["household", alert.household]]);
  const when = part("when");
  when.replaceChildren(timeElement(alert.last_seen, zone));
  if (alert.count > 1) when.append(` · ${t("count", { n: alert.count })}`);
  const summary = evidenceSummary(alert.evidence, zone);
  part("evidence").textContent = summary;
  part("evidence").hidden = !summary;
  const handled = [];
  if (alert.acknowledged_by) {
    handled.push(t("acknowledgedBy", { who: alert.names?.acknowledged_by || alert.acknowledged_by }));
  }
  if (alert.assigned_to) handled.push(t("assignedTo", { who: alert.names?.assigned_to || alert.assigned_to }));
  if (alert.cycle > 0 && alert.note) handled.push(t("reopened", { note: alert.note }));
  part("handled").textContent = handled.join(" · ");
  part("handled").title = ids([["acknowledged_by", alert.acknowledged_by], ["assigned_to", alert.assigned_to]]);
  part("handled").hidden = handled.length === 0;
  const acknowledge = part("acknowledge");
  acknowledge.textContent = t("acknowledge");
  acknowledge.hidden = alert.state !== "open";
  const [outcomeLabel, noteLabel] = card.querySelectorAll(".resolve label");
  outcomeLabel.textContent = t("outcomeLabel");
  noteLabel.textContent = t("noteLabel");
  const options = part("outcome").options;
  options[0].textContent = t("chooseOutcome");
  for (let i = 1; i < options.length; i += 1) options[i].textContent = label("outcomes", options[i].value);
  part("resolve-button").textContent = t("resolve");
  part("resolve-summary").textContent = t("resolveOpen");
  part("history-summary").textContent = t("historyOpen");
  if (part("history-panel").open) showHistory(card, alert);
}

// --- an alert's history, in words ----------------------------------------------------------------

// What changes an alert's history shows: read again when one of these moved.
function historyVersion(alert) {
  return [alert.cycle, alert.state, alert.count, alert.last_seen, alert.severity, alert.tier, alert.deadline,
    alert.assigned_to, alert.acknowledged_by].join("|");
}

async function showHistory(card, alert) {
  const version = historyVersion(alert);
  const known = state.histories.get(alert.id);
  if (known) renderHistory(card, known.detail);
  if (known?.version === version) return;
  state.histories.set(alert.id, { version, detail: known?.detail ?? null });
  try {
    const detail = await api(`/alerts/${alert.id}`, { signal: state.session?.signal });
    state.histories.set(alert.id, { version, detail });
    if (card.isConnected) renderHistory(card, detail);
  } catch (error) {
    state.histories.delete(alert.id); // read again on the next change or unfolding
    reportBackgroundError(error);
  }
}

function renderHistory(card, detail) {
  if (!detail) return;
  const zone = detail.names.timezone;
  const name = (who) => (who === "hub" ? t("theHub") : detail.people?.[who] || who);
  card.querySelector(".history").replaceChildren(...detail.history.map((event) => {
    const item = element("li", `history-event action-${event.action}`);
    const when = element("time", "history-time clock", clockTime(Date.parse(event.at), zone));
    when.dateTime = event.at;
    when.title = fullTime(Date.parse(event.at), zone);
    const d = event.detail || {};
    item.dataset.action = event.action;
    item.append(when, " ", historyWords(event, name));
    const note = d.note || d.report?.note;
    if (note) item.append(` · ${t("historyNote", { note })}`);
    item.title = ids([["actor", event.actor], ["role", event.role], ["to", d.to], ["previous", d.previous],
      ["acknowledged_by", d.acknowledged_by], ["recipients", (d.recipients || []).join(", ")]]);
    return item;
  }));
}

function historyWords(event, name) {
  const d = event.detail || {};
  const told = (d.recipients || []).map(name).join(t("listJoin"));
  switch (event.action) {
    case "raised": return d.report ? t("historyReported", { who: name(event.actor) }) : t("historyRaised");
    case "reopened": return t("historyReopened", { who: name(event.actor) });
    case "dispatched": return t("historyDispatched");
    case "dispatch_answer": return t("historyDispatchAnswer", { status: label("dispatchStatuses", d.status) });
    case "repeated": return t(d.new_incident ? "historyNewIncident" : "historyRepeated", { n: d.count });
    case "severity_raised": return t("historySeverityRaised", { to: label("severities", d.to) });
    case "escalated": return t("historyEscalated", { tier: d.tier, told });
    case "escalation_exhausted": return t("historyExhausted");
    case "acknowledged":
      return t(d.via === "link" ? "historyAcknowledgedLink" : "historyAcknowledged", { who: name(event.actor) });
    case "assigned": return t("historyAssigned", { by: name(event.actor), who: name(d.to) });
    case "overdue": return t("historyOverdue", { who: name(d.acknowledged_by), tier: d.tier, told });
    case "resolved":
      return t("historyResolved", { who: name(event.actor), outcome: label("outcomes", d.outcome) });
    case "cleared": return t("historyCleared");
    case "delivery_failed": return t("historyDeliveryFailed");
    default: return event.action;
  }
}

function renderAlerts() {
  const list = $("alerts");
  const cards = new Map([...list.children].map((card) => [Number(card.dataset.alertId), card]));
  const alerts = sortedAlerts();
  for (const [id, card] of cards) if (!state.alerts.has(id)) card.remove();
  alerts.forEach((alert, index) => {
    const card = cards.get(alert.id) ?? buildCard(alert);
    updateCard(card, alert);
    // Move only what is out of place: moving a node that holds the focus would drop it.
    if (list.children[index] !== card) list.insertBefore(card, list.children[index] ?? null);
  });
  $("no-alerts").hidden = alerts.length > 0;
  $("alert-count").textContent = alerts.length ? String(alerts.length) : "";
}

function renderResidents() {
  const list = $("residents");
  list.replaceChildren(...state.residents.map((resident) => {
    const item = element("li", "resident");
    item.dataset.residentId = resident.id;
    item.append(element("h3", "resident-name", resident.name));
    item.title = ids([["resident", resident.id]]);
    const where = element("p", "where", place(resident.building_name, resident.building,
      resident.unit || resident.household));
    where.title = ids([["building", resident.building], ["household", resident.household]]);
    item.append(where);
    const activity = state.activity.get(resident.id);
    if (activity) {
      const last = element("p", "last-activity", t("lastActivity"));
      if (activity.last_activity) last.append(timeElement(activity.last_activity, resident.timezone));
      else last.append(t("noActivity"));
      const presence = element("span", `presence ${activity.away ? "away" : "at-home"}`,
        activity.away ? t("away") : t("atHome"));
      item.append(last, presence);
      if (activity.coverage_ok === false) item.append(element("p", "coverage", t("coverageGap")));
      const changes = activity.sensitivity?.changes || [];
      if (changes.length) item.append(sensitivityChanges(resident, changes));
    }
    return item;
  }));
  $("no-residents").hidden = state.residents.length > 0 || !state.residentsLoaded;
  renderReportForm();
}

// --- reopening what was resolved (supervisors) --------------------------------------------------------

const RESOLVED_SHOWN = 20;

async function loadResolved(signal) {
  if (!state.me?.may_reopen) return;
  const list = await api(`/alerts?state=resolved&limit=${RESOLVED_SHOWN}`, { signal });
  for (const alert of list) applyAlert(alert, { announce: false });
  renderResolved();
}

/** The recently resolved alerts, newest first, each with a note and a Reopen button. Rebuilt only when
 * they or the language change, so typing is never interrupted; a typed note survives a rebuild. */
function renderResolved() {
  $("resolved").hidden = !state.me?.may_reopen;
  const list = $("resolved-alerts");
  const alerts = [...state.resolved.values()].sort((a, b) => b.id - a.id).slice(0, RESOLVED_SHOWN);
  const shown = [state.language, ...alerts.map((alert) => alert.id)].join(",");
  if (list.dataset.shown === shown) return;
  list.dataset.shown = shown;
  const typed = new Map([...list.querySelectorAll("input.reopen-note")].map((n) => [n.dataset.alertId, n.value]));
  list.replaceChildren(...alerts.map((alert) => {
    const item = element("li", "resolved-alert");
    item.dataset.alertId = String(alert.id);
    item.dataset.kind = alert.kind;
    const outcome = t("resolvedAs", { outcome: label("outcomes", alert.outcome),
      who: alert.names?.resolved_by || alert.resolved_by });
    item.append(element("p", "who", `${label("kinds", alert.kind)} · ${whoFor(alert)} · ${outcome}`));
    const form = element("form");
    const noteLabel = element("label", null, t("reopenNote"));
    const note = element("input", "reopen-note");
    note.id = noteLabel.htmlFor = `reopen-${alert.id}-note`;
    note.dataset.alertId = String(alert.id);
    note.maxLength = 2000;
    note.value = typed.get(String(alert.id)) ?? "";
    const error = element("p", "card-error");
    error.setAttribute("role", "alert");
    error.hidden = true;
    const button = element("button", "reopen", t("reopen"));
    button.type = "submit";
    form.append(noteLabel, note, error, button);
    form.addEventListener("submit", (event) => reopen(event, alert, note, error, button));
    item.append(form);
    return item;
  }));
}

async function reopen(event, alert, note, error, button) {
  event.preventDefault();
  error.hidden = true;
  if (!note.value.trim()) {
    error.textContent = t("reopenNoteRequired");
    error.hidden = false;
    note.focus();
    return;
  }
  button.disabled = true;
  try {
    const body = { note: note.value.trim() };
    const reopened = await api(`/alerts/${alert.id}/reopen`, { method: "POST", body, signal: state.session?.signal });
    applyAlert(reopened, { announce: false });
    renderAlerts();
    renderResolved();
  } catch (failure) {
    if (showFailure(failure, error)) return;
    button.disabled = false;
  }
}

// --- reporting something by hand -------------------------------------------------------------------

/** The places one may report about: each resident, then each of their homes. Kept as chosen across
 * re-renders. */
function renderReportForm() {
  const about = $("report-about");
  const chosen = about.value;
  const homes = new Map(state.residents.map((r) => [r.household, r]));
  about.replaceChildren(
    ...state.residents.map((r) => Object.assign(element("option", null, r.name), { value: `resident:${r.id}` })),
    ...[...homes.values()].map((r) => Object.assign(
      element("option", null, t("reportHome", { name: r.unit || r.household })),
      { value: `household:${r.household}` })),
  );
  if (chosen) about.value = chosen;
  const category = $("report-category");
  const kept = category.value;
  category.replaceChildren(...REPORT_CATEGORIES.map(
    (value) => Object.assign(element("option", null, label("categories", value)), { value })));
  if (kept) category.value = kept;
}

async function fileReport(event) {
  event.preventDefault();
  const form = $("report-form");
  const error = $("report-error");
  const done = $("report-done");
  error.hidden = true;
  done.hidden = true;
  const note = $("report-note").value.trim();
  if (!note) {
    error.textContent = t("reportNoteRequired");
    error.hidden = false;
    $("report-note").focus();
    return;
  }
  const [place, id] = $("report-about").value.split(/:(.*)/s);
  const body = { category: $("report-category").value, note, [place]: id };
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    if ($("report-location").checked) {
      const where = await phoneLocation();
      if (where) body.location = where;
    }
    const alert = await api("/reports", { method: "POST", body, signal: state.session?.signal });
    applyAlert(alert, { announce: false });
    renderAlerts();
    $("report-note").value = "";
    done.textContent = t("reportDone", { id: alert.id });
    done.hidden = false;
  } catch (failure) {
    if (showFailure(failure, error)) return;
  } finally {
    button.disabled = false;
  }
}

/** What caregivers' verdicts changed in the resident's alerting, newest first, folded: the list is
 * re-rendered every minute, so whether it is unfolded is kept per resident. */
function sensitivityChanges(resident, changes) {
  const panel = element("details", "sensitivity");
  panel.open = state.sensitivityOpen.has(resident.id);
  panel.addEventListener("toggle", () => {
    if (panel.open) state.sensitivityOpen.add(resident.id);
    else state.sensitivityOpen.delete(resident.id);
  });
  panel.append(element("summary", "sensitivity-summary", t("sensitivityHeading", { n: changes.length })));
  const zone = resident.timezone;
  const list = element("ol", "sensitivity-changes");
  list.append(...[...changes].reverse().map((change) => {
    const values = {
      band: label("bands", change.band), old: change.old.toFixed(2), new: change.new.toFixed(2),
      alert: change.alert_id, incident: change.incident ? clockTime(Date.parse(change.incident), zone) : "",
    };
    const key = { false_alarm: "sensitivityFalseAlarm", missed: "sensitivityMissed" }[change.cause]
      || "sensitivityReverted";
    const item = element("li", `sensitivity-change cause-${change.cause}`);
    const when = element("time", "clock", clockTime(Date.parse(change.at), zone));
    when.dateTime = change.at;
    when.title = fullTime(Date.parse(change.at), zone);
    item.append(when, ` ${t(key, values)} · ${t("sensitivityBy", { who: change.by_name })}`);
    if (change.note) item.append(` · ${t("historyNote", { note: change.note })}`);
    item.title = ids([["change", change.id], ["by", change.by], ["reverts", change.reverts]]);
    return item;
  }));
  panel.append(list);
  return panel;
}

function renderWhoami() {
  $("whoami").textContent = state.me ? t("signedInAs", { name: state.me.name }) : "";
}

function announceAlert(key, alert) {
  const what = `${label("severities", alert.severity)} ${label("kinds", alert.kind)} · ${whoFor(alert)}`;
  $("announcer").textContent = t(key, { what });
}

function showBanner(key, values) {
  state.banner = { key, values };
  const banner = $("banner");
  banner.textContent = t(key, values);
  banner.hidden = false;
}

function hideBanner() {
  state.banner = null;
  $("banner").hidden = true;
}

function setLanguage(language) {
  state.language = language;
  localStorage.setItem(LANGUAGE_KEY, language);
  document.documentElement.lang = language === "zh" ? "zh-CN" : "en";
  document.title = t("title");
  for (const node of document.querySelectorAll("[data-label]")) node.textContent = t(node.dataset.label);
  const toggle = $("language");
  toggle.textContent = t("switchTo");
  toggle.lang = language === "zh" ? "en" : "zh-CN";
  if (state.banner) showBanner(state.banner.key, state.banner.values);
  if (state.loginError) showLoginError(state.loginError);
  if (state.linkedNote) showLinkedNote(state.linkedNote);
  renderWhoami();
  renderAlerts();
  renderResidents();
  renderResolved();
  renderVisits();
}

// --- start -------------------------------------------------------------------------------------------

$("language").addEventListener("click", () => setLanguage(state.language === "zh" ? "en" : "zh"));
$("logout").addEventListener("click", () => endSession(null));
$("report-form").addEventListener("submit", fileReport);
window.addEventListener("hashchange", () => {
  state.linked = null;
  if (state.session) showLinkedAlert(state.session.signal).catch(reportBackgroundError);
});
$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const candidate = $("token").value.trim();
  if (candidate) signIn(candidate);
  else showLoginError({ key: "loginFailed" });
});

setLanguage(state.language);
// A reload keeps the session: the saved token is checked by the first request, and a hub that is
// unreachable right now shows the banner and retries instead of asking for the token again.
if (token()) startSession(null);
else showLogin(null);
