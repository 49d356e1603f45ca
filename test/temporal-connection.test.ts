import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import {
  createSecureServer,
  type Http2SecureServer,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { connectRecoveryClient } from '../src/client';
import { ConfigError, loadConfig } from '../src/config';
import { REPO_ROOT } from './support/paths';

/** A private CA and a certificate for 127.0.0.1 / localhost signed by it (rustls refuses a self-signed leaf). */
function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  const ca = path.join(dir, 'ca.pem');
  const caKey = path.join(dir, 'ca.key');
  const cert = path.join(dir, 'server.pem');
  const key = path.join(dir, 'server.key');
  const csr = path.join(dir, 'server.csr');
  const ext = path.join(dir, 'server.ext');
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    caKey,
    '-out',
    ca,
    '-days',
    '1',
    '-subj',
    '/CN=test-ca',
  );
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=localhost');
  execFileSync('bash', [
    '-c',
    `printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > ${ext}`,
  ]);
  openssl(
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca,
    '-CAkey',
    caKey,
    '-CAcreateserial',
    '-out',
    cert,
    '-days',
    '1',
    '-extfile',
    ext,
  );
  return { ca, cert, key };
}

/**
 * A TLS gRPC endpoint that records the headers of every request and refuses it (UNAUTHENTICATED):
 * enough to see whether a client speaks TLS, trusts the CA and sends the API key.
 */
async function recordingTlsServer(cert: string, key: string) {
  const requests: IncomingHttpHeaders[] = [];
  const sessions = new Set<ServerHttp2Session>();
  const server: Http2SecureServer = createSecureServer({
    cert: await readFile(cert),
    key: await readFile(key),
    allowHTTP1: false,
  });
  server.on('session', (session) => sessions.add(session));
  server.on('stream', (stream, headers) => {
    requests.push(headers);
    stream.respond(
      { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '16', 'grpc-message': 'test server' },
      { endStream: true },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = () => {
    for (const session of sessions) session.destroy();
    server.close();
  };
  return { close, port: (server.address() as AddressInfo).port, requests };
}

describe('connections to a secured Temporal (TLS, API key) through @temporalio/envconfig', () => {
  let dir: string;
  let certs: { ca: string; cert: string; key: string };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'temporal-tls-'));
    certs = makeCertificates(dir);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the standard TEMPORAL_API_KEY and TEMPORAL_TLS_* variables: an API key turns TLS on', () => {
    const config = loadConfig({
      TEMPORAL_ADDRESS: 'acme.tmprl.cloud:7233',
      TEMPORAL_NAMESPACE: 'acme',
      TEMPORAL_API_KEY: 'k-123',
    });
    expect(config.temporal).toMatchObject({ address: 'acme.tmprl.cloud:7233', namespace: 'acme' });
    expect(config.temporal.security).toEqual({ apiKey: 'k-123', tls: true });
    const mtls = loadConfig({ TEMPORAL_TLS_CLIENT_CERT_PATH: certs.cert, TEMPORAL_TLS_CLIENT_KEY_PATH: certs.key });
    const pair =
      typeof mtls.temporal.security.tls === 'object' ? mtls.temporal.security.tls?.clientCertPair : undefined;
    expect(Buffer.from(pair?.crt ?? []).toString()).toContain('BEGIN CERTIFICATE');
    expect(Buffer.from(pair?.key ?? []).toString()).toContain('PRIVATE KEY');
    expect(loadConfig({}).temporal.security).toEqual({});
  });

  it('reads a profile of a TOML config file (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE); the variables win over it', async () => {
    const file = path.join(dir, 'temporal.toml');
    await writeFile(
      file,
      `[profile.prod]\naddress = "temporal.prod:7233"\nnamespace = "recovery"\napi_key = "from-file"\n[profile.prod.tls]\nserver_ca_cert_path = ${JSON.stringify(certs.ca)}\nserver_name = "temporal.prod"\n`,
    );
    const config = loadConfig({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'prod' });
    expect(config.temporal).toMatchObject({ address: 'temporal.prod:7233', namespace: 'recovery' });
    expect(config.temporal.security.apiKey).toBe('from-file');
    const tls = config.temporal.security.tls;
    expect(typeof tls === 'object' && tls?.serverNameOverride).toBe('temporal.prod');
    expect(Buffer.from((typeof tls === 'object' && tls?.serverRootCACertificate) || []).toString()).toContain(
      'BEGIN CERTIFICATE',
    );
    expect(
      loadConfig({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'prod', TEMPORAL_API_KEY: 'env' }).temporal.security
        .apiKey,
    ).toBe('env');
  });

  it('a named config file that is missing, or a profile it lacks, fails start-up naming the variable', async () => {
    expect(() => loadConfig({ TEMPORAL_CONFIG_FILE: path.join(dir, 'nope.toml') })).toThrow(
      /TEMPORAL_CONFIG_FILE=.*nope\.toml.*cannot read/,
    );
    const file = path.join(dir, 'other.toml');
    await writeFile(file, '[profile.default]\naddress = "x:1"\n');
    expect(() => loadConfig({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'staging' })).toThrow(ConfigError);
    expect(() => loadConfig({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'staging' })).toThrow(
      /TEMPORAL_PROFILE="staging".*not found/,
    );
  });

  it('the SDK (and so the CLI) speaks TLS to the server, trusting the configured CA, and sends the API key', async () => {
    const tls = await recordingTlsServer(certs.cert, certs.key);
    try {
      const config = loadConfig({
        TEMPORAL_ADDRESS: `127.0.0.1:${tls.port}`,
        TEMPORAL_API_KEY: 'sdk-key-1',
        TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.ca,
        TEMPORAL_TLS_SERVER_NAME: 'localhost',
      });
      await expect(connectRecoveryClient({ config })).rejects.toThrow();
      expect(tls.requests.length).toBeGreaterThan(0);
      expect(tls.requests[0]?.authorization).toBe('Bearer sdk-key-1');
      expect(tls.requests[0]?.[':path']).toMatch(/^\/temporal\.api\.workflowservice\.v1\.WorkflowService\//);
    } finally {
      tls.close();
    }
  }, 60_000);

  it('the worker process connects with TLS and the API key from the same variables', async () => {
    const tls = await recordingTlsServer(certs.cert, certs.key);
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src', 'worker.ts')], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        METRICS_PORT: '0',
        TEMPORAL_ADDRESS: `127.0.0.1:${tls.port}`,
        TEMPORAL_API_KEY: 'worker-key-2',
        TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.ca,
        TEMPORAL_TLS_SERVER_NAME: 'localhost',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      const deadline = Date.now() + 60_000;
      while (tls.requests.length === 0 && Date.now() < deadline && child.exitCode === null)
        await new Promise((resolve) => setTimeout(resolve, 200));
      expect(tls.requests.map((headers) => headers.authorization)).toContain('Bearer worker-key-2');
      // Refused by the server, the worker stops with the reason instead of running unconnected.
      expect(await exited).toBe(1);
      expect(output).toMatch(/test server|Unauthenticated|UNAUTHENTICATED/i);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      tls.close();
    }
  }, 90_000);
});
