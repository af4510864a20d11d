// A development-only SMART App Launch 2.0 authorization server for the local FHIR server (`--smart`).
//
// oidc-provider (a maintained, certified OAuth 2.0 / OpenID Connect server) does the OAuth work:
// authorization code, PKCE (S256, required for public clients), token issue and lookup, CORS for the
// token endpoint from the client's redirect origin. This file adds what SMART asks of an EHR on top:
// - the EHR launch: `POST [base]/_services/smart/Launch` (the call the CDS Hooks sandbox makes before it
//   opens a `smart` card link) stores the launch context (patient, appContext) and answers a `launch_id`;
// - `[base]/.well-known/smart-configuration` (SMART discovery);
// - the launch context in the token response (`patient`, and `appContext` as CDS Hooks 2.0 defines it);
// - a bearer-token check with SMART scopes (v1 `patient/Type.read|write`, v2 `patient/Type.cruds`) for the
//   FHIR API.
// Nobody signs in: every authorization is granted at once to a development clinician, with the scopes
// the app asked for and this server supports. Never expose it beyond loopback.
import { randomUUID } from 'node:crypto';
import Provider from 'oidc-provider';

const MOUNT = '/auth';
const LAUNCH_TTL_MS = 60 * 60 * 1000;
const DEV_CLINICIAN = 'Practitioner/dev-clinician';
const RESOURCE_SCOPES = [
  'patient/*.read', 'patient/*.write', 'patient/*.rs', 'patient/*.cruds',
  ...['Patient', 'Condition', 'Observation', 'QuestionnaireResponse', 'ServiceRequest', 'MedicationRequest', 'Encounter']
    .flatMap((type) => [`patient/${type}.read`, `patient/${type}.write`, `patient/${type}.r`, `patient/${type}.rs`, `patient/${type}.c`, `patient/${type}.cu`, `patient/${type}.cruds`]),
];
const OP_SCOPES = ['openid', 'fhirUser', 'launch', 'launch/patient', 'offline_access'];

// What a granted scope allows: `read` (GET) or `write` (POST, PUT, DELETE) on a resource type.
function allows(scopes, type, action) {
  for (const scope of scopes) {
    const m = /^(patient|user|system)\/(\*|[A-Za-z]+)\.(read|write|\*|[cruds]+)(\?.*)?$/.exec(scope);
    if (!m || (m[2] !== '*' && m[2] !== type)) continue;
    const perm = m[3];
    if (perm === '*' || perm === action) return true;
    if (/^[cruds]+$/.test(perm)) {
      if (action === 'read' && /[rs]/.test(perm)) return true;
      if (action === 'write' && /[cud]/.test(perm)) return true;
    }
  }
  return false;
}

export async function createSmartAuth({ origin, fhirBase, clients }) {
  const issuer = `${origin}${MOUNT}`;
  const launches = new Map(); // launch_id -> { patient, appContext, created }
  const grantLaunch = new Map(); // grantId -> launch context, set when the authorization is granted

  const provider = new Provider(issuer, {
    clients: clients.map(({ clientId, redirectUris }) => ({
      client_id: clientId,
      token_endpoint_auth_method: 'none',
      redirect_uris: redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
    })),
    scopes: OP_SCOPES,
    extraParams: ['launch', 'aud'],
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => fhirBase,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource) => {
          if (resource !== fhirBase) throw new Provider.errors.InvalidTarget(`the only resource here is ${fhirBase}`);
          return { scope: RESOURCE_SCOPES.join(' '), accessTokenFormat: 'opaque', accessTokenTTL: 3600 };
        },
      },
    },
    // A new interaction (and a new grant) for every authorization, since each launch carries its own
    // patient: only the grant the interaction just made is reused, never an earlier one of the session.
    loadExistingGrant: (ctx) => {
      const grantId = ctx.oidc.result?.consent?.grantId;
      return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
    },
    interactions: { url: (ctx, interaction) => `${MOUNT}/interaction/${interaction.uid}` },
    findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id, fhirUser: `${fhirBase}/${DEV_CLINICIAN}` }) }),
    claims: { fhirUser: ['fhirUser'] },
    cookies: { keys: [randomUUID()] },
    renderError: (ctx, out) => {
      ctx.type = 'application/json';
      ctx.body = out;
    },
  });
  provider.proxy = false;

  // SMART's launch context rides on the token response (SMART App Launch 2.0, "launch context arrives
  // with your access token"; CDS Hooks 2.0 "appContext ... sent to the SMART app as part of the OAuth 2.0
  // access token response").
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route !== 'token' || ctx.status !== 200 || !ctx.body?.access_token) return;
    const token = await provider.AccessToken.find(ctx.body.access_token);
    const launch = token && grantLaunch.get(token.grantId);
    if (!launch) return;
    ctx.body.patient = launch.patient;
    if (launch.appContext !== undefined) ctx.body.appContext = launch.appContext;
    ctx.body.need_patient_banner = true;
  });

  async function interaction(req, res) {
    const details = await provider.interactionDetails(req, res);
    const { params, uid } = details;
    const launch = launches.get(params.launch);
    if (!launch) {
      const description = params.launch ? 'unknown or expired launch' : 'this development server supports the EHR launch only (a launch parameter)';
      return provider.interactionFinished(req, res, { error: 'invalid_request', error_description: description });
    }
    const grant = new provider.Grant({ accountId: DEV_CLINICIAN, clientId: params.client_id });
    const requested = String(params.scope || '').split(' ').filter(Boolean);
    const opScopes = requested.filter((s) => OP_SCOPES.includes(s));
    if (opScopes.length) grant.addOIDCScope(opScopes.join(' '));
    const resourceScopes = requested.filter((s) => RESOURCE_SCOPES.includes(s));
    if (resourceScopes.length) grant.addResourceScope(fhirBase, resourceScopes.join(' '));
    const grantId = await grant.save();
    grantLaunch.set(grantId, launch);
    launches.delete(params.launch); // a launch id is used once
    return provider.interactionFinished(
      req,
      res,
      { login: { accountId: DEV_CLINICIAN }, consent: { grantId } },
      { mergeWithLastSubmission: false, uid },
    );
  }

  return {
    issuer,
    smartConfiguration() {
      return {
        issuer,
        authorization_endpoint: `${issuer}/auth`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        grant_types_supported: ['authorization_code'],
        response_types_supported: ['code'],
        token_endpoint_auth_methods_supported: ['none'],
        scopes_supported: [...OP_SCOPES, ...RESOURCE_SCOPES],
        code_challenge_methods_supported: ['S256'],
        capabilities: [
          'launch-ehr', 'client-public', 'context-ehr-patient', 'context-banner', 'context-style',
          'permission-patient', 'permission-v1', 'permission-v2',
        ],
      };
    },
    // POST [base]/_services/smart/Launch: { launchUrl, parameters: { patient, appContext, ... } }.
    createLaunch(body) {
      const parameters = body?.parameters;
      if (!parameters || typeof parameters.patient !== 'string' || !parameters.patient) {
        return [400, 'parameters.patient (the patient id in context) is required'];
      }
      if (parameters.appContext !== undefined && typeof parameters.appContext !== 'string') {
        return [400, 'parameters.appContext must be a string (CDS Hooks 2.0 Link.appContext)'];
      }
      const now = Date.now();
      for (const [id, l] of launches) if (now - l.created > LAUNCH_TTL_MS) launches.delete(id);
      const id = randomUUID();
      launches.set(id, { patient: parameters.patient, appContext: parameters.appContext, created: now });
      return [200, id];
    },
    // The scopes of a valid access token, or null.
    async tokenScopes(value) {
      const token = value && (await provider.AccessToken.find(value));
      if (!token || token.isExpired) return null;
      return String(token.scope || '').split(' ').filter(Boolean);
    },
    allows,
    // Requests under /auth go to oidc-provider (with the mount path stripped, as a mounted app sees them).
    async handle(req, res) {
      if (req.url !== MOUNT && !req.url.startsWith(`${MOUNT}/`)) return false;
      req.originalUrl = req.url;
      req.url = req.url.slice(MOUNT.length) || '/';
      const m = /^\/interaction\/[^/?]+/.exec(req.url);
      if (m && req.method === 'GET') {
        req.url = req.originalUrl; // interactionDetails reads the interaction cookie by the full path
        await interaction(req, res);
        return true;
      }
      await provider.callback()(req, res);
      return true;
    },
  };
}
