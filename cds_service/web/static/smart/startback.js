// The STarT Back app, after the launch: who the patient is (the EHR's banner may be hidden), the nine items,
// the score from the service (the same scoring code as the rules: POST score), then the QuestionnaireResponse
// and its three Observations written to the EHR's FHIR server with the EHR's token.
'use strict';
(function () {
  const config = document.getElementById('smart-config').dataset;
  const form = document.getElementById('startback');
  const status = document.getElementById('status');
  const say = (text) => { status.textContent = text; };

  async function scoreOf(response) {
    const answer = await fetch(config.scoreUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/fhir+json' },
      body: JSON.stringify(response),
    });
    const body = await answer.json();
    if (!answer.ok) throw new Error(body.issue ? body.issue[0].diagnostics : `scoring failed (${answer.status})`);
    return body;
  }

  function appContext(client) {
    const raw = (client.state.tokenResponse || {}).appContext;
    if (!raw) return {};
    try {
      const parsed = JSON.parse(raw);
      return parsed && typeof parsed === 'object' ? parsed : {};
    } catch {
      return {};
    }
  }

  function responseFrom(patientId, encounterId) {
    const items = [...form.querySelectorAll('fieldset.item')].map((fieldset) => {
      const chosen = fieldset.querySelector('input:checked');
      return {
        linkId: fieldset.dataset.linkId,
        text: fieldset.dataset.text,
        answer: chosen ? [{ valueCoding: { system: chosen.dataset.system, code: chosen.value, display: chosen.dataset.display } }] : [],
      };
    });
    return {
      resourceType: 'QuestionnaireResponse',
      questionnaire: config.questionnaireUrl,
      status: 'completed',
      subject: { reference: `Patient/${patientId}` },
      ...(encounterId && { encounter: { reference: `Encounter/${encounterId}` } }),
      authored: new Date().toISOString(),
      item: items,
    };
  }

  function show(score) {
    document.getElementById('result').hidden = false;
    document.getElementById('risk').textContent = `${score.risk[0].toUpperCase()}${score.risk.slice(1)} risk`;
    document.getElementById('scores').textContent = `Total score ${score.total} of 9; distress subscore ${score.distress} of 5.`;
    document.getElementById('next-step').textContent = `Next step: ${score.nextStep}`;
  }

  FHIR.oauth2.ready().then(async (client) => {
    const patientId = client.patient.id;
    const banner = document.getElementById('patient-banner');
    try {
      const patient = await client.patient.read();
      const name = (patient.name || [])[0] || {};
      const words = [...(name.given || []), name.family].filter(Boolean).join(' ') || name.text || `Patient ${patientId}`;
      banner.textContent = `${words}${patient.birthDate ? `, born ${patient.birthDate}` : ''}`;
    } catch {
      banner.textContent = `Patient ${patientId}`;
    }
    const context = appContext(client);
    if (context.episodeStart) document.getElementById('episode').textContent = `Back pain since ${context.episodeStart} (from the card).`;
    form.hidden = false;
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const button = form.querySelector('button');
      button.disabled = true;
      try {
        const draft = responseFrom(patientId, client.encounter.id);
        show(await scoreOf(draft)); // checked and scored before anything is written
        say('Saving to the record…');
        const saved = await client.create(draft);
        const scored = await scoreOf(saved);
        const written = [];
        for (const observation of scored.observations) written.push(await client.create(observation));
        const note = document.getElementById('saved');
        note.dataset.references = [`QuestionnaireResponse/${saved.id}`, ...written.map((o) => `Observation/${o.id}`)].join(' ');
        note.textContent = 'The answers, the total, the distress subscore and the risk level are in the record.';
        say('Saved to the record.');
      } catch (error) {
        say(`Not saved: ${error.message}`);
        button.disabled = false;
      }
    });
  }).catch((error) => {
    say(`Could not connect to the EHR: ${error.message}`);
  });
})();
