// The launch URL of the STarT Back app. SMART's own client (fhirclient, vendored) does the work: with `iss`
// and `launch` (the EHR launch) it reads the server's .well-known/smart-configuration and sends the browser
// to the authorization endpoint with PKCE; with `fhirServiceUrl` and `patientId` (an open test server, as
// the CDS Hooks sandbox offers) it goes straight to the app without authorization.
'use strict';
(function () {
  const config = document.getElementById('smart-config').dataset;
  const status = document.getElementById('status');
  const params = new URLSearchParams(window.location.search);
  const redirectUri = new URL(config.redirect, window.location.href).href;
  let options;
  if (params.get('iss') && params.get('launch')) {
    options = { clientId: config.clientId, scope: config.scope, redirectUri, pkceMode: 'required' };
  } else if (params.get('fhirServiceUrl') && params.get('patientId')) {
    options = { fhirServiceUrl: params.get('fhirServiceUrl'), patientId: params.get('patientId'), redirectUri };
  } else {
    status.textContent =
      'This page is opened by the EHR (with iss and launch), or for an open test server with fhirServiceUrl and patientId.';
    return;
  }
  FHIR.oauth2.authorize(options).catch((error) => {
    status.textContent = `Could not connect to the EHR: ${error.message}`;
  });
})();
