import { execFile } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './support/free-port';
import { REPO_ROOT } from './support/paths';

/*
 * The first run on a machine that has nothing: an empty tools cache, an empty state directory, no
 * Temporal CLI, no ClickHouse, no Kubernetes binaries. The install scripts run for real, in a copy of
 * the clone, with the tools they would build or install replaced by stubs on PATH (a `go` that writes
 * a fake binary, an `apt-get` that "installs" a fake ClickHouse) and every other command of the
 * machine reachable as usual. The tests then check what the scripts ran: the server command lines,
 * the paths, and that what a caller captures from stdout is only what it asked for.
 */

const run = promisify(execFile);

/** Commands a machine that has nothing lacks: hidden from PATH, so only the stubs answer. */
const ABSENT = new Set([
  'go',
  'gofmt',
  'temporal',
  'apt-get',
  'clickhouse-server',
  'clickhouse-client',
  'clickhouse',
  'helm',
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
]);

interface FreshMachine {
  root: string;
  clone: string;
  stubLog: string;
  env: NodeJS.ProcessEnv;
  ports: {
    temporal: number;
    temporalUi: number;
    clickhouseHttp: number;
    clickhouseTcp: number;
    clickhouseInterserver: number;
  };
}

function writeExecutable(file: string, text: string): void {
  writeFileSync(file, text);
  chmodSync(file, 0o755);
}

/** Links every command of the machine's PATH except the absent ones into one directory. */
function machineWithout(dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const bin of (process.env.PATH ?? '').split(':')) {
    if (!bin || !existsSync(bin)) continue;
    for (const name of readdirSync(bin)) {
      const target = path.join(dir, name);
      if (ABSENT.has(name) || existsSync(target)) continue;
      const source = path.join(bin, name);
      try {
        if (statSync(source).isFile()) symlinkSync(source, target);
      } catch {
        // a dangling link on PATH is no command
      }
    }
  }
}

/** The stubs: each records its command line in the stub log, one line per call. */
function writeStubs(stubs: string, fakeState: string): void {
  const record = `printf '%s\\n' "$(basename "$0") $*" >>"$STUB_LOG"`;
  // The fake Temporal CLI that the stub `go install` "builds".
  const fakeTemporal = `#!/usr/bin/env bash
${record}
case "$1 $2" in
  "operator cluster") [ -f "${fakeState}/temporal-serving" ] && echo SERVING || exit 1 ;;
  "server start-dev") echo "$0" >"${fakeState}/temporal-started-as"; touch "${fakeState}/temporal-serving"; exec sleep 600 ;;
  "operator search-attribute") if [ "$3" = list ]; then echo "OrgId Keyword"; fi ;;
  *) if [ "$1" = --version ]; then echo "temporal version 1.5.1 (Server 1.29.1, UI 2.41.0)"; fi ;;
esac
`;
  writeFileSync(path.join(fakeState, 'temporal'), fakeTemporal);
  // go: prints noise on stdout and stderr like a real build would, then writes fake binaries.
  writeExecutable(
    path.join(stubs, 'go'),
    `#!/usr/bin/env bash
${record}
echo "go: downloading github.com/temporalio/cli v1.5.1"; echo "go: downloading more" >&2
[ -n "$STUB_GO_SECONDS" ] && sleep "$STUB_GO_SECONDS"
if [ "$1" = install ]; then
  name=$(basename "\${@: -1}"); name=\${name%@*}
  [ "$name" = temporal ] && cp "${fakeState}/temporal" "$GOBIN/temporal" || printf '#!/bin/sh\\necho fake %s\\n' "$name" >"$GOBIN/$name"
  chmod +x "$GOBIN/$name"
elif [ "$1" = build ]; then
  out=; pkgs=(); while [ $# -gt 0 ]; do case "$1" in -o) out=$2; shift 2 ;; -ldflags) shift 2 ;; -*|build) shift ;; *) pkgs+=("$1"); shift ;; esac; done
  for p in "\${pkgs[@]}"; do
    if [[ "$out" == */ ]]; then f="$out$(basename "$p")"; else f=$out; fi
    printf '#!/bin/sh\\necho fake %s\\n' "$p" >"$f"; chmod +x "$f"
  done
fi
`,
  );
  // The fake ClickHouse that the stub apt-get "installs": answers /ping on the configured HTTP port.
  const fakeClickhouseServer = `#!/usr/bin/env bash
${record}
config=; pidfile=
for a in "$@"; do case "$a" in --config-file=*) config=\${a#*=} ;; --pid-file=*) pidfile=\${a#*=} ;; esac; done
port=$(sed -n 's#.*<http_port>\\([0-9]*\\)</http_port>.*#\\1#p' "$config")
nohup node -e 'require("http").createServer((q, r) => r.end(q.url.startsWith("/ping") ? "Ok.\\n" : "18.16.1")).listen(+process.argv[1], "127.0.0.1")' "$port" >/dev/null 2>&1 &
echo $! >"$pidfile"
`;
  writeFileSync(path.join(fakeState, 'clickhouse-server'), fakeClickhouseServer);
  writeExecutable(
    path.join(stubs, 'apt-get'),
    `#!/usr/bin/env bash
${record}
if [ "$1" = install ]; then
  for p in "$@"; do
    case "$p" in
      clickhouse-server) cp "${fakeState}/clickhouse-server" "${stubs}/clickhouse-server"; chmod +x "${stubs}/clickhouse-server"
        mkdir -p "$CLICKHOUSE_CONFIG_DIR"
        printf '<yandex>\\n<http_port>8123</http_port>\\n<tcp_port>9000</tcp_port>\\n<interserver_http_port>9009</interserver_http_port>\\n<path>/var/lib/clickhouse/</path>\\n<log>/var/log/clickhouse-server/clickhouse-server.log</log>\\n</yandex>\\n' >"$CLICKHOUSE_CONFIG_DIR/config.xml"
        echo '<yandex/>' >"$CLICKHOUSE_CONFIG_DIR/users.xml" ;;
      clickhouse-client) printf '#!/bin/sh\\n' >"${stubs}/clickhouse-client"; chmod +x "${stubs}/clickhouse-client" ;;
    esac
  done
fi
`,
  );
}

/** A copy of the clone's install scripts on a machine without any of the tools they build. */
async function freshMachine(): Promise<FreshMachine> {
  const root = mkdtempSync(path.join(tmpdir(), 'eloquent-fresh-'));
  const clone = path.join(root, 'clone');
  for (const part of ['scripts', 'tools/kube/go.mod', 'tools/etcd/go.mod', 'test/fixtures/velero-crds.yaml']) {
    cpSync(path.join(REPO_ROOT, part), path.join(clone, part), { recursive: true });
  }
  const stubs = path.join(root, 'stubs');
  const fakeState = path.join(root, 'fake');
  mkdirSync(stubs, { recursive: true });
  mkdirSync(fakeState, { recursive: true });
  machineWithout(path.join(root, 'machine'));
  writeStubs(stubs, fakeState);
  const ports = {
    temporal: await freePort(),
    temporalUi: await freePort(),
    clickhouseHttp: await freePort(),
    clickhouseTcp: await freePort(),
    clickhouseInterserver: await freePort(),
  };
  const stubLog = path.join(root, 'stub.log');
  writeFileSync(stubLog, '');
  const env: NodeJS.ProcessEnv = {
    HOME: path.join(root, 'home'),
    PATH: `${stubs}:${path.join(root, 'machine')}`,
    STUB_LOG: stubLog,
    ELOQUENT_TOOLS_CACHE: path.join(root, 'tools-cache'),
    ELOQUENT_STATE_DIR: path.join(root, 'state'),
    CLICKHOUSE_CONFIG_DIR: path.join(root, 'etc-clickhouse'),
    TEMPORAL_ADDRESS: `127.0.0.1:${ports.temporal}`,
    TEMPORAL_UI_PORT: String(ports.temporalUi),
    CLICKHOUSE_URL: `http://127.0.0.1:${ports.clickhouseHttp}`,
    CLICKHOUSE_TCP_PORT: String(ports.clickhouseTcp),
    CLICKHOUSE_INTERSERVER_PORT: String(ports.clickhouseInterserver),
  };
  return { root, clone, stubLog, env, ports };
}

async function script(
  machine: FreshMachine,
  name: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('bash', [path.join(machine.clone, 'scripts', name), ...args], {
      env: machine.env,
      cwd: machine.clone,
      timeout: 90_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err: unknown) {
    const failed = err as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof failed.code === 'number' ? failed.code : 1,
      stdout: failed.stdout ?? '',
      stderr: failed.stderr ?? '',
    };
  }
}

function stubCalls(machine: FreshMachine): string[] {
  return readFileSync(machine.stubLog, 'utf8').split('\n').filter(Boolean);
}

async function tearDown(machine: FreshMachine): Promise<void> {
  await script(machine, 'stack.sh', ['down', 'temporal', 'clickhouse']);
  rmSync(machine.root, { recursive: true, force: true });
}

describe('the first run on a machine without tools', () => {
  test('stack.sh up temporal builds the CLI into the tools cache and starts the server from that path', async () => {
    const machine = await freshMachine();
    try {
      const result = await script(machine, 'stack.sh', ['up', 'temporal']);
      expect(result.stderr).not.toContain('ERROR');
      expect(result.code).toBe(0);
      const cached = path.join(machine.env.ELOQUENT_TOOLS_CACHE ?? '', 'temporal-v1.5.1', 'temporal');
      const calls = stubCalls(machine);
      expect(calls).toContain('go install github.com/temporalio/cli/cmd/temporal@v1.5.1');
      expect(existsSync(cached)).toBe(true);
      // The server was started by its path, with the state directory and the ports asked for.
      const start = calls.find((line) => line.startsWith('temporal server start-dev'));
      expect(start).toBe(
        `temporal server start-dev --ip 127.0.0.1 --port ${machine.ports.temporal} --ui-port ${machine.ports.temporalUi} ` +
          `--db-filename ${machine.env.ELOQUENT_STATE_DIR}/temporal/temporal.db --log-level warn ` +
          '--search-attribute OrgId=Keyword --search-attribute Operation=Keyword',
      );
      expect(readFileSync(path.join(machine.root, 'fake', 'temporal-started-as'), 'utf8').trim()).toBe(
        path.join(machine.clone, '.tools', 'bin', 'temporal'),
      );
      // The one search attribute the fake server lacks is registered.
      expect(calls).toContain(
        `temporal operator search-attribute create --address 127.0.0.1:${machine.ports.temporal} --name Operation --type Keyword`,
      );
      // Progress is on stderr, with what, how long it usually takes and how long so far; stdout is the status table.
      expect(result.stderr).toMatch(/building the Temporal CLI v1\.5\.1 .*\(usually 2-8 minutes/);
      expect(result.stderr).toMatch(/done building the Temporal CLI v1\.5\.1 .* in \d+s/);
      expect(result.stdout.split('\n').filter(Boolean)).toEqual([
        expect.stringMatching(/^SERVICE +ADDRESS +VERSION +STATUS$/),
        expect.stringMatching(new RegExp(`^temporal +127\\.0\\.0\\.1:${machine.ports.temporal} +1\\.29\\.1 +up$`)),
        `Temporal UI: http://127.0.0.1:${machine.ports.temporalUi}`,
      ]);
      // A second `up` finds the server running and builds nothing.
      const before = stubCalls(machine).filter((line) => line.startsWith('go ')).length;
      expect((await script(machine, 'stack.sh', ['up', 'temporal'])).code).toBe(0);
      expect(stubCalls(machine).filter((line) => line.startsWith('go ')).length).toBe(before);
      expect(stubCalls(machine).filter((line) => line.startsWith('temporal server start-dev'))).toHaveLength(1);
    } finally {
      await tearDown(machine);
    }
  });

  test('stack.sh status builds nothing and answers at once; two `up`s at the same time build the CLI once', async () => {
    const machine = await freshMachine();
    try {
      // Seen: `status` started a build of several minutes, and nine parallel ones choked the machine.
      const status = await script(machine, 'stack.sh', ['status', 'temporal']);
      expect(status.code).not.toBe(0);
      expect(status.stdout).toMatch(new RegExp(`^temporal +127\\.0\\.0\\.1:${machine.ports.temporal} +- +down$`, 'm'));
      expect(stubCalls(machine).filter((line) => line.startsWith('go '))).toEqual([]);

      machine.env.STUB_GO_SECONDS = '3';
      const [first, second] = await Promise.all([
        script(machine, 'stack.sh', ['up', 'temporal']),
        script(machine, 'stack.sh', ['up', 'temporal']),
      ]);
      expect([first.code, second.code]).toEqual([0, 0]);
      expect(stubCalls(machine).filter((line) => line.startsWith('go install'))).toHaveLength(1);
      expect(stubCalls(machine).filter((line) => line.startsWith('temporal server start-dev'))).toHaveLength(1);
      expect(first.stderr + second.stderr).toContain('waiting for another scripts/stack.sh up to finish');
    } finally {
      await tearDown(machine);
    }
  });

  test('stack.sh up clickhouse installs the package with apt-get and starts it from a config under the state directory', async () => {
    const machine = await freshMachine();
    try {
      const result = await script(machine, 'stack.sh', ['up', 'clickhouse']);
      expect(result.stderr).not.toContain('ERROR');
      expect(result.code).toBe(0);
      const calls = stubCalls(machine);
      expect(calls).toContain('apt-get update');
      expect(calls).toContain('apt-get install -y -q clickhouse-server clickhouse-client');
      const chDir = path.join(machine.env.ELOQUENT_STATE_DIR ?? '', 'clickhouse');
      expect(calls).toContain(
        `clickhouse-server --config-file=${chDir}/config.xml --pid-file=${chDir}/clickhouse.pid --daemon`,
      );
      const config = readFileSync(path.join(chDir, 'config.xml'), 'utf8');
      expect(config).toContain(`<http_port>${machine.ports.clickhouseHttp}</http_port>`);
      expect(config).toContain(`<tcp_port>${machine.ports.clickhouseTcp}</tcp_port>`);
      expect(config).toContain(`<interserver_http_port>${machine.ports.clickhouseInterserver}</interserver_http_port>`);
      expect(config).toContain(`<path>${chDir}/data/</path>`);
      expect(config).not.toContain('/var/lib/clickhouse');
      expect(result.stderr).toMatch(
        /installing clickhouse-server clickhouse-client with apt-get \(usually 1-3 minutes/,
      );
      expect(result.stdout).toMatch(
        new RegExp(`^clickhouse +127\\.0\\.0\\.1:${machine.ports.clickhouseHttp} +18\\.16\\.1 +up$`, 'm'),
      );
      // apt's lists are fresh now: a second install would not update them again.
      expect(existsSync(path.join(machine.clone, '.data', '.apt-updated'))).toBe(true);
    } finally {
      await tearDown(machine);
    }
  });

  test("the demo's stack.sh up neither builds nor starts the Kubernetes control plane", async () => {
    const machine = await freshMachine();
    try {
      // The demo runs `stack.sh up` with no services named; the machine's own PostgreSQL, Redis and
      // NATS are already running, so only the project's servers start.
      const result = await script(machine, 'stack.sh', ['up']);
      expect(result.stderr).not.toContain('ERROR');
      expect(result.code).toBe(0);
      const calls = stubCalls(machine);
      expect(calls.filter((line) => line.startsWith('go '))).toEqual([
        'go install github.com/temporalio/cli/cmd/temporal@v1.5.1',
      ]);
      expect(
        readdirSync(machine.env.ELOQUENT_TOOLS_CACHE ?? '').filter((name) => /^(kube|etcd|helm)-/.test(name)),
      ).toEqual([]);
      expect(existsSync(path.join(machine.env.ELOQUENT_STATE_DIR ?? '', 'kube'))).toBe(false);
      expect(result.stdout).not.toMatch(/^(etcd|kube-api|kube-cm) /m);
    } finally {
      await tearDown(machine);
    }
  });

  test('kube-build.sh builds each missing binary once and prints only the paths on stdout, which kube-stack.sh evaluates', async () => {
    const machine = await freshMachine();
    try {
      const first = await script(machine, 'kube-build.sh', []);
      expect(first.code).toBe(0);
      const cache = machine.env.ELOQUENT_TOOLS_CACHE ?? '';
      const kubeVersion = /KUBE_VERSION=(v[0-9.]+)/.exec(
        readFileSync(path.join(machine.clone, 'scripts', 'kube-build.sh'), 'utf8'),
      )?.[1];
      expect(first.stdout.trim().split('\n')).toEqual([
        `KUBE_BIN_DIR=${cache}/kube-${kubeVersion}`,
        expect.stringMatching(new RegExp(`^ETCD_BIN_DIR=${cache}/etcd-v[0-9.]+$`)),
        expect.stringMatching(new RegExp(`^HELM_BIN_DIR=${cache}/helm-v[0-9.]+$`)),
      ]);
      for (const binary of ['kube-apiserver', 'kube-controller-manager'])
        expect(existsSync(path.join(cache, `kube-${kubeVersion}`, binary))).toBe(true);
      const builds = stubCalls(machine).filter((line) => line.startsWith('go '));
      expect(builds).toEqual([
        expect.stringMatching(
          /^go build -trimpath -ldflags .* k8s\.io\/kubernetes\/cmd\/kube-apiserver k8s\.io\/kubernetes\/cmd\/kube-controller-manager$/,
        ),
        expect.stringMatching(/^go build -trimpath -ldflags -s -w -o .*\/etcd go\.etcd\.io\/etcd\/server\/v3$/),
        expect.stringMatching(/^go install -trimpath .* helm\.sh\/helm\/v3\/cmd\/helm@v[0-9.]+$/),
      ]);
      expect(first.stderr).toMatch(/building kube-apiserver kube-controller-manager .* \(usually 10-18 minutes/);
      // Built once: the second run only reports what is present, and --paths now succeeds.
      const second = await script(machine, 'kube-build.sh', []);
      expect(second.stdout).toBe(first.stdout);
      expect(stubCalls(machine).filter((line) => line.startsWith('go '))).toHaveLength(3);
      expect((await script(machine, 'kube-build.sh', ['--paths'])).code).toBe(0);
      const env = await script(machine, 'kube-stack.sh', ['env']);
      expect(env.stdout).toBe(
        `KUBECONFIG=${machine.env.ELOQUENT_STATE_DIR}/kube/kubeconfig\nHELM_BIN=${cache}/helm-${/HELM_VERSION=(v[0-9.]+)/.exec(readFileSync(path.join(machine.clone, 'scripts', 'kube-build.sh'), 'utf8'))?.[1]}/helm\n`,
      );
    } finally {
      await tearDown(machine);
    }
  });
});
