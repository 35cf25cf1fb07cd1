/**
 * What commands print to, and the one error kind that means "bad usage"
 * (exit code 2). Commands take the streams as an argument so tests can
 * capture them.
 */
export interface OutStream {
  write(text: string): unknown;
  /** A terminal: progress is redrawn in place. */
  isTTY?: boolean;
  columns?: number;
}

export interface CliIO {
  stdout: OutStream;
  stderr: OutStream;
}

export const processIO = (): CliIO => ({ stdout: process.stdout, stderr: process.stderr });

/** Exit codes of every command. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

/** A command line that cannot run: wrong flags, missing arguments, bad config. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * Parse errors of node:util parseArgs as short usage messages naming the
 * flag; anything else is returned unchanged.
 */
export function parseArgsError(err: unknown, command: string, flags: readonly string[]): unknown {
  const code = (err as { code?: unknown })?.code;
  if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS')) return err;
  const message = (err as Error).message;
  const quoted = /'([^']*)'/.exec(message)?.[1];
  const known = `known options: ${flags.join(', ')}`;
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return new UsageError(`${command}: unknown option '${quoted}'; ${known}`);
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return new UsageError(`${command}: unexpected argument '${quoted}'; ${known}`);
    default:
      return new UsageError(`${command}: ${message}`);
  }
}
