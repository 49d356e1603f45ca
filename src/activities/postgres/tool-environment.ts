/**
 * How a PostgreSQL tool (pg_dump, pg_dumpall, pg_restore, psql) is started without its password on
 * the command line. Every process can read every other's `/proc/<pid>/cmdline` (`ps aux`), while
 * `/proc/<pid>/environ` is readable only by the same user and root: so the password of a
 * `--dbname=<connection URI>` argument is moved into the child's `PGPASSWORD`, which libpq reads
 * when the URI carries none. (A pass file would add nothing here: the worker already holds the
 * password in its own memory and environment.)
 */
export interface PgToolInvocation {
  /** The arguments, each connection URI without its password. */
  args: string[];
  /** The worker's environment, plus `PGPASSWORD` when a URI carried a password. */
  env: NodeJS.ProcessEnv;
}

const DBNAME_OPTION = '--dbname=';

/**
 * Moves the password out of every `--dbname=postgres://user:password@…` argument (and a
 * `password=` query parameter) into `PGPASSWORD`; other arguments stay as they are.
 * @throws Error when two URIs carry different passwords: one child has one `PGPASSWORD`.
 */
export function pgToolInvocation(args: readonly string[], env: NodeJS.ProcessEnv = process.env): PgToolInvocation {
  let password: string | undefined;
  const cleaned = args.map((arg) => {
    if (!arg.startsWith(DBNAME_OPTION)) return arg;
    const { uri, password: found } = withoutPassword(arg.slice(DBNAME_OPTION.length));
    if (found !== undefined) {
      if (password !== undefined && password !== found)
        throw new Error('a PostgreSQL tool was given two connection URIs with different passwords');
      password = found;
    }
    return DBNAME_OPTION + uri;
  });
  return { args: cleaned, env: password === undefined ? env : { ...env, PGPASSWORD: password } };
}

function withoutPassword(uri: string): { uri: string; password: string | undefined } {
  if (!/^postgres(ql)?:\/\//.test(uri)) return { uri, password: undefined };
  const url = new URL(uri);
  let password = url.password === '' ? undefined : decodeURIComponent(url.password);
  url.password = '';
  const queryPassword = url.searchParams.get('password');
  if (queryPassword !== null) {
    password ??= queryPassword;
    url.searchParams.delete('password');
  }
  return { uri: url.toString(), password };
}
