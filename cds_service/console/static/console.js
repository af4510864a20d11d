// The console's one script. Try a hook: call the service as an EHR does (discovery, prefetch from the
// discovery templates read from the FHIR server, the hook call, feedback) and render the cards as EHRs do.
// Gallery: render card Markdown, filter by rule and hook, offer printing. Markdown goes through marked, then
// DOMPurify. Answers: draw the charts with Chart.js from the page's JSON block (the tables hold the numbers).
'use strict';

function markdown(text) {
  return window.DOMPurify.sanitize(window.marked.parse(text || ''));
}

function renderMarkdownIn(root) {
  for (const el of root.querySelectorAll('.markdown')) {
    el.innerHTML = markdown(el.textContent);
  }
}

function element(tag, attributes = {}, text = '') {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) el.setAttribute(name, value);
  if (text) el.textContent = text;
  return el;
}

const say = (id, text) => { document.getElementById(id).textContent = text; };

// crypto.randomUUID exists only in secure contexts (https, localhost); a console reached over plain http on an
// internal host name still needs hookInstance uuids: version 4 from getRandomValues, which exists everywhere.
function uuid4() {
  if (window.crypto.randomUUID) return window.crypto.randomUUID();
  const b = window.crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function bearer(token) {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// Fills a prefetch template from the context; a template that names anything not in the context is not
// prefetched (the service then fetches it itself when it needs it).
function fill(template, context) {
  let unresolved = false;
  const query = template.replace(/\{\{\s*context\.(\w+)\s*\}\}/g, (_, name) => {
    if (context[name] === undefined) unresolved = true;
    return encodeURIComponent(context[name] ?? '');
  });
  return unresolved ? null : query;
}

async function prefetchFor(service, context, fhirServer, fhirToken) {
  const prefetch = {};
  for (const [key, template] of Object.entries(service.prefetch || {})) {
    const query = fill(template, context);
    if (query === null) continue;
    const response = await fetch(`${fhirServer.replace(/\/$/, '')}/${query}`, {
      headers: { Accept: 'application/fhir+json', ...bearer(fhirToken) },
    });
    if (response.ok) prefetch[key] = await response.json();
  }
  return prefetch;
}

function draftBundle(names, drafts) {
  const entry = [];
  for (const name of names) {
    const draft = drafts[name];
    if (draft.resourceType === 'Bundle') entry.push(...(draft.entry || []));
    else entry.push({ resource: draft });
  }
  return { resourceType: 'Bundle', type: 'collection', entry };
}

async function sendFeedback(feedbackUrl, jwt, item) {
  const response = await fetch(feedbackUrl, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...bearer(jwt) },
    body: JSON.stringify({ feedback: [{ outcomeTimestamp: new Date().toISOString(), ...item }] }),
  });
  const body = await response.json().catch(() => ({}));
  const stored = response.ok ? `stored ${body.stored}` : (body.issue || [{}])[0].diagnostics;
  say('feedback-status', `Feedback (${item.outcome}): HTTP ${response.status}, ${stored}`);
  return response.ok;
}

function renderCard(card, feedbackUrl, jwt, holdsBack) {
  const el = element('article', { class: `card ${card.indicator}`, 'data-uuid': card.uuid });
  el.append(element('p', { class: 'indicator' }, card.indicator));
  el.append(element('h3', { class: 'summary' }, card.summary));
  const detail = element('div', { class: 'detail' });
  detail.innerHTML = markdown(card.detail);
  el.append(detail);
  const source = element('p', { class: 'source' }, 'Source: ');
  if (card.source.url) source.append(element('a', { href: card.source.url }, card.source.label));
  else source.append(card.source.label);
  el.append(source);

  const actions = element('div', { class: 'actions' });
  const done = (text) => {
    for (const control of actions.querySelectorAll('button, select, input')) control.disabled = true;
    actions.append(element('span', { class: 'answered', role: 'status' }, text));
  };
  for (const suggestion of card.suggestions || []) {
    const button = element('button', { type: 'button', class: 'suggestion' }, suggestion.label);
    button.addEventListener('click', async () => {
      const item = { card: card.uuid, outcome: 'accepted', acceptedSuggestions: [{ id: suggestion.uuid }] };
      if (await sendFeedback(feedbackUrl, jwt, item)) done(`Accepted: ${suggestion.label}`);
    });
    actions.append(button);
  }
  if ((card.overrideReasons || []).length) {
    const id = `reason-${card.uuid}`;
    actions.append(element('label', { for: id }, 'Reason for dismissing'));
    const select = element('select', { id, class: 'override-reason' });
    // No reason is chosen for the clinician: a plain Dismiss sends none, and holds nothing back.
    select.append(element('option', { value: '' }, 'No reason given'));
    for (const reason of card.overrideReasons) {
      const option = element('option', { value: reason.code, 'data-system': reason.system }, reason.display);
      select.append(option);
    }
    actions.append(select);
    const comment = element('input', { type: 'text', class: 'comment', 'aria-label': 'Comment (optional)', placeholder: 'Comment (optional)' });
    actions.append(comment);
    const topic = ((card.source || {}).topic || {}).code;
    const heldBack = (holdsBack || {})[topic] || {};
    const consequence = element('p', { class: 'holds-back', role: 'status' });
    const explain = () => {
      const code = select.value;
      const what = code && heldBack[code];
      consequence.textContent = what
        ? `Dismissing with this reason holds back ${what} for this patient.`
        : `Dismissing ${code ? 'with this reason' : 'without a reason'} holds nothing back: the card shows again.`;
    };
    select.addEventListener('change', explain);
    explain();
    const dismiss = element('button', { type: 'button', class: 'dismiss' }, 'Dismiss');
    dismiss.addEventListener('click', async () => {
      const option = select.selectedOptions[0];
      const item = { card: card.uuid, outcome: 'overridden' };
      const overrideReason = {};
      if (option.value) overrideReason.reason = { code: option.value, system: option.dataset.system, display: option.textContent };
      if (comment.value) overrideReason.userComment = comment.value;
      if (Object.keys(overrideReason).length) item.overrideReason = overrideReason;
      const said = option.value ? option.textContent : 'no reason given';
      if (await sendFeedback(feedbackUrl, jwt, item)) done(`Dismissed: ${said}`);
    });
    actions.append(dismiss);
    actions.append(consequence);
  }
  el.append(actions);
  return el;
}

async function tryHook(event) {
  event.preventDefault();
  const config = JSON.parse(document.getElementById('console-config').textContent);
  const form = event.target;
  const fhirServer = form.fhirServer.value.trim();
  const fhirToken = form.fhirToken.value.trim();
  const jwt = form.jwt.value.trim();
  const hook = form.hook.value;
  const patientId = form.patient.value.trim();
  const cards = document.getElementById('cards');
  cards.replaceChildren();
  say('feedback-status', '');
  try {
    say('status', 'Reading discovery…');
    // With authentication on, the console calls the service as its own trusted client (behind the console
    // credential): discovery comes with the page, hook calls and feedback go to the console's endpoints.
    const viaConsole = config.authRequired && !jwt;
    const discovery = viaConsole ? config.discovery : await (await fetch(config.serviceBase, { headers: bearer(jwt) })).json();
    const service = (discovery.services || []).find((s) => s.hook === hook);
    if (!service) throw new Error(`no service for ${hook} in discovery`);
    const context = { userId: 'Practitioner/console-user', patientId };
    if (hook !== 'patient-view') {
      const names = [...form.drafts.selectedOptions].map((o) => o.value);
      context.draftOrders = draftBundle(names, config.draftOrders);
      if (hook === 'order-select') {
        context.selections = context.draftOrders.entry.map((e) => `${e.resource.resourceType}/${e.resource.id}`);
      }
    }
    say('status', 'Reading prefetch from the FHIR server…');
    const prefetch = await prefetchFor(service, context, fhirServer, fhirToken);
    const body = { hookInstance: uuid4(), hook, fhirServer, context, prefetch };
    if (fhirToken) {
      body.fhirAuthorization = { access_token: fhirToken, token_type: 'Bearer', expires_in: 300, scope: 'patient/*.read', subject: 'cds-console' };
    }
    say('status', `Calling ${service.id}…`);
    const serviceUrl = viaConsole ? `${config.callBase}/${service.id}` : `${config.serviceBase}/${service.id}`;
    const feedbackUrl = viaConsole ? `${config.feedbackBase}/${service.id}` : `${serviceUrl}/feedback`;
    const response = await fetch(serviceUrl, {
      method: 'POST', headers: { 'Content-Type': 'application/json', ...bearer(jwt) }, body: JSON.stringify(body),
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(`HTTP ${response.status}: ${(answer.issue || [{}])[0].diagnostics}`);
    for (const card of answer.cards) cards.append(renderCard(card, feedbackUrl, jwt, config.holdsBack));
    say('status', `${service.id} answered with ${answer.cards.length} card${answer.cards.length === 1 ? '' : 's'} (${Object.keys(prefetch).length} prefetch keys sent).`);
  } catch (err) {
    say('status', `Error: ${err.message}`);
  }
}

function toggleDrafts() {
  const form = document.getElementById('try-form');
  form.drafts.disabled = form.hook.value === 'patient-view';
}

// Chart.js draws what the server computed; the charts carry no number the tables beside them do not.
const CHART_ROW_PX = 22;

function sized(canvas, rows) {
  canvas.parentElement.style.height = `${Math.max(160, 60 + rows * CHART_ROW_PX)}px`;
  return canvas;
}

function outcomeBars(data, series, horizontal) {
  return {
    type: 'bar',
    data: {
      labels: series.labels,
      datasets: data.outcomes
        .filter((o) => series.values[o.key] !== undefined)
        .map((o) => ({ label: o.label, data: series.values[o.key], backgroundColor: o.colour })),
    },
    options: {
      indexAxis: horizontal ? 'y' : 'x',
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      scales: { [horizontal ? 'x' : 'y']: { beginAtZero: true, ticks: { precision: 0 } } },
    },
  };
}

function clinicianShares(series) {
  const datasets = [{ type: 'bar', label: 'orders without a red flag (%)', data: series.share, backgroundColor: '#c62828' }];
  if (series.peer_median !== null) {
    datasets.push({ type: 'line', label: "peers' median (%)", data: series.labels.map(() => series.peer_median), borderColor: '#1b1b1b', pointRadius: 0 });
  }
  return {
    type: 'bar',
    data: { labels: series.labels, datasets },
    options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true, max: 100 } } },
  };
}

function clinicianWeeks(series) {
  return {
    type: 'line',
    data: {
      labels: series.weeks,
      datasets: series.series.map((s) => ({ label: s.label, data: s.without_red_flag })),
    },
    options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  };
}

function drawCharts() {
  const data = JSON.parse(document.getElementById('answers-data').textContent);
  const configs = {
    rules: () => outcomeBars(data, data.rules, true),
    reasons: () => outcomeBars(data, data.reasons, true),
    weeks: () => outcomeBars(data, data.weeks, false),
    clinicians: () => clinicianShares(data.clinicians),
    'clinician-weeks': () => clinicianWeeks(data.clinicians),
  };
  const rows = {
    rules: data.rules.labels.length * 4,
    reasons: data.reasons.labels.length,
    weeks: 8,
    clinicians: 8,
    'clinician-weeks': 8,
  };
  for (const canvas of document.querySelectorAll('canvas[data-chart]')) {
    const name = canvas.dataset.chart;
    new window.Chart(sized(canvas, rows[name]), configs[name]());
  }
}

// The gallery's filter: show only the scenarios and cards of the chosen rule and hook.
function filterGallery() {
  const rule = document.getElementById('filter-rule').value;
  const hook = document.getElementById('filter-hook').value;
  let shown = 0;
  for (const section of document.querySelectorAll('section.scenario')) {
    const hookMatches = !hook || section.dataset.hook === hook;
    let cards = 0;
    for (const item of section.querySelectorAll('.gallery-item')) {
      const visible = hookMatches && (!rule || item.dataset.rule === rule);
      item.hidden = !visible;
      cards += visible;
    }
    const visible = hookMatches && (!rule || cards > 0);
    section.hidden = !visible;
    document.querySelector(`#gallery-index a[href="#${section.id}"]`).parentElement.hidden = !visible;
    shown += visible;
  }
  say('filter-status', `${shown} scenario${shown === 1 ? '' : 's'} shown`);
}

document.addEventListener('DOMContentLoaded', () => {
  const page = document.body.dataset.page;
  if (page === 'try') {
    const form = document.getElementById('try-form');
    form.addEventListener('submit', tryHook);
    form.hook.addEventListener('change', toggleDrafts);
    toggleDrafts();
  }
  if (page === 'gallery') {
    renderMarkdownIn(document);
    document.getElementById('print').addEventListener('click', () => window.print());
    for (const id of ['filter-rule', 'filter-hook']) document.getElementById(id).addEventListener('change', filterGallery);
    filterGallery();
  }
  if (page === 'answers' && document.getElementById('answers-data')) drawCharts();
});
