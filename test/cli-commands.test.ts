import { parseCommandLine } from '../src/cli/command-line';
import { COMMANDS } from '../src/cli/commands';
import { runCli } from '../src/cli/main';
import { captureIo } from './support/cli-io';

// No Temporal at this address: a command that tried to connect would exit 3, not 2.
const offline = { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1' };

describe('CLI commands, help and option parsing', () => {
  it('has one module for every command: those before the split, and describe, logs, prune', () => {
    expect(COMMANDS.map((c) => c.name).sort()).toEqual(
      [
        'abandon-delete',
        'archive-chat',
        'backup',
        'backups',
        'cancel-delete',
        'delete',
        'describe',
        'helm-values',
        'k8s-backup',
        'logs',
        'platform-backup',
        'platform-restore',
        'platform-verify',
        'preflight',
        'prune',
        'reapply-deletions',
        'restore',
        'retry-delete',
        'rollback',
        'rollback-platform',
        'schedules',
        'stale',
        'status',
        'verify',
      ].sort(),
    );
  });

  it('the global help lists every command on one line with each of its options', async () => {
    const io = captureIo(offline);
    expect(await runCli(['--help'], io)).toBe(0);
    const lines = io.out.split('\n');
    for (const command of COMMANDS) {
      const line = lines.find((l) => l.startsWith(`  ${command.name} `) || l === `  ${command.name}`);
      expect(line).toBeDefined();
      for (const option of command.options) expect(line).toContain(`--${option.name}`);
      expect(io.out).toContain(command.summary);
    }
    for (const global of ['--json', '--task-queue <q>', '-h, --help']) expect(io.out).toContain(global);
  });

  it("each command's help lists each of its options with its description, and the global ones", async () => {
    for (const command of COMMANDS) {
      const io = captureIo(offline);
      expect(await runCli([command.name, '--help'], io)).toBe(0);
      expect(io.out.startsWith(`Usage: eloquent-recovery ${command.name}`)).toBe(true);
      for (const option of command.options) {
        expect(io.out).toMatch(
          new RegExp(`^  --${option.name}\\b.*${option.description.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'),
        );
      }
      expect(io.out).toMatch(/^ {2}--task-queue <q> +the worker's task queue/m);
    }
  });

  it('an unknown option is refused with exit 2, naming the option and the command, before anything is sent', async () => {
    const io = captureIo(offline);
    expect(await runCli(['backup', 'org_a', '--frobnicate', '--task-queue', 'q'], io)).toBe(2);
    expect(io.err).toMatch(/^unknown option --frobnicate for command backup\n/);
    expect(io.err).toContain('Usage: eloquent-recovery backup <org>');
    expect(io.out).toBe('');
  });

  it("another command's option is refused too: --grace belongs to delete, not to backups", async () => {
    const io = captureIo(offline);
    expect(await runCli(['backups', 'org_a', '--grace', '7d'], io)).toBe(2);
    expect(io.err).toMatch(/^unknown option --grace for command backups\n/);
  });

  it('a value option without its value, and a flag given one, are refused naming the option and the command', async () => {
    const missing = captureIo(offline);
    expect(await runCli(['delete', 'org_a', '--grace'], missing)).toBe(2);
    expect(missing.err).toMatch(/^option --grace for command delete needs a value: --grace 7d\n/);
    const swallowed = captureIo(offline);
    expect(await runCli(['delete', 'org_a', '--reason', '--json'], swallowed)).toBe(2);
    expect(swallowed.err).toMatch(/^option --reason for command delete needs a value/);
    const flag = captureIo(offline);
    expect(await runCli(['delete', 'org_a', '--skip-backup=yes'], flag)).toBe(2);
    expect(flag.err).toMatch(/^option --skip-backup for command delete is a flag and takes no value/);
  });

  it("an option before the command's name is refused unless it is global", async () => {
    const io = captureIo(offline);
    expect(await runCli(['--grace', '7d', 'delete', 'org_a'], io)).toBe(2);
    expect(io.err).toMatch(/^unknown option --grace \(a command's options go after its name\)/);
    expect(await runCli(['--task-queue', 'q', 'delete', '--help'], captureIo(offline))).toBe(0);
  });

  it('a required option declared by the module is enforced: abandon-delete needs --reason', async () => {
    const io = captureIo(offline);
    expect(await runCli(['abandon-delete', 'org_a', '--json'], io)).toBe(2);
    expect(JSON.parse(io.out)).toMatchObject({ ok: false, exitCode: 2, error: 'abandon-delete needs --reason' });
  });

  it('the parser reads --name=value, keeps the last of a repeated option and takes what follows -- as positional', () => {
    const line = parseCommandLine(
      ['--json', 'delete', 'org_a', '--grace=3d', '--grace', '5d', '--by=', '--', '--not-an-option'],
      COMMANDS,
    );
    expect(line.command?.name).toBe('delete');
    expect(line.json).toBe(true);
    expect(line.options).toEqual({ grace: '5d', by: '' });
    expect(line.positionals).toEqual(['org_a', '--not-an-option']);
  });

  it('an unknown command exits 2 with the global help, and no command prints it too', async () => {
    const unknown = captureIo(offline);
    expect(await runCli(['frobnicate', '--json'], unknown)).toBe(2);
    expect(unknown.err).toMatch(/^unknown command "frobnicate"\n\neloquent-recovery — /);
    const none = captureIo(offline);
    expect(await runCli([], none)).toBe(2);
    expect(none.out).toContain('Commands:');
    expect(await runCli(['help'], captureIo(offline))).toBe(0);
  });
});
