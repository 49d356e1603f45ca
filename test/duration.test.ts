import { parseDuration } from '../src/client/validation';
import { parseDurationMs } from '../src/contracts/duration';
import { scheduleEntrySchema } from '../src/schedules/schedule-file';

/** What each entry point makes of one duration: the workflow's parser, the SDK/CLI's, the schedule file's. */
function everywhere(text: string): { workflow: number | 'refused'; client: number | 'refused'; schedule: boolean } {
  const attempt = (parse: () => number): number | 'refused' => {
    try {
      return parse();
    } catch {
      return 'refused';
    }
  };
  const entry = { id: 'x', description: 'staleness check', workflowType: 'backupStaleness', every: text };
  return {
    workflow: attempt(() => parseDurationMs(text, 'gracePeriod')),
    client: attempt(() => parseDuration(text, '--grace')),
    schedule: scheduleEntrySchema.safeParse(entry).success,
  };
}

describe('one duration format for the UI, the SDK, the CLI and the schedule file', () => {
  test.each([
    ['7d', 604_800_000],
    ['1w', 604_800_000],
    ['1h30m', 5_400_000],
    ['2d12h', 216_000_000],
    ['90s', 90_000],
    ['1500ms', 1_500],
  ])('%s is %d ms wherever it is given', (text, ms) => {
    expect(everywhere(text)).toEqual({ workflow: ms, client: ms, schedule: true });
  });

  test.each(['', '7', 'd', '7 d', '1.5h', '-1d', '7days', '1y'])('%j is refused everywhere', (text) => {
    expect(everywhere(text)).toEqual({ workflow: 'refused', client: 'refused', schedule: false });
  });

  test('the refusal names the field and the form; zero is a duration but not a schedule interval', () => {
    expect(() => parseDuration('1 week', '--grace')).toThrow(
      '--grace: expected a duration such as "7d", "12h", "10s", "1h30m", "1w" or "0s"; got "1 week"',
    );
    expect(everywhere('0s')).toEqual({ workflow: 0, client: 0, schedule: false });
  });
});
