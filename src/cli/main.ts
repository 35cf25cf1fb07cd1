/**
 * The `convrnn` command line: `convrnn <command> [options]`. The only layer
 * that prints. Each command parses its own flags (node:util parseArgs,
 * strict) and resolves to its exit code: 0 ok, 1 failed, 2 bad usage or
 * config, 130 interrupted.
 */
import { EXIT, processIO, type CliIO } from './io.js';
import { TRAIN_SUMMARY, trainCommand } from './train.js';
import { COMPARE_SUMMARY, compareCommand } from './compare.js';

interface Command {
  summary: string;
  run(args: string[], io: CliIO): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  train: { summary: TRAIN_SUMMARY, run: (args, io) => trainCommand(args, io) },
  compare: { summary: COMPARE_SUMMARY, run: (args, io) => compareCommand(args, io) },
};

export const USAGE = `Usage: convrnn <command> [options]

Convolutional recurrent networks of the ventral visual stream, on the CPU.

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(10)}${c.summary}`)
  .join('\n')}

Run convrnn <command> --help for a command's options.`;

/** Run the command line `argv` (without node and the script); resolves to the exit code. */
export async function main(argv: string[], io: CliIO = processIO()): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    io.stderr.write(`${USAGE}\n`);
    return EXIT.usage;
  }
  if (first === '--help' || first === '-h' || first === 'help') {
    const topic = first === 'help' ? rest[0] : undefined;
    if (topic !== undefined && Object.hasOwn(COMMANDS, topic)) return COMMANDS[topic].run(['--help'], io);
    io.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (first.startsWith('-')) {
    io.stderr.write(`convrnn: unknown option '${first}'; a command comes first (convrnn <command> [options]); see convrnn --help\n`);
    return EXIT.usage;
  }
  if (!Object.hasOwn(COMMANDS, first)) {
    io.stderr.write(`convrnn: unknown command '${first}'; commands: ${Object.keys(COMMANDS).join(', ')}\n`);
    return EXIT.usage;
  }
  try {
    return await COMMANDS[first].run(rest, io);
  } catch (err) {
    io.stderr.write(`convrnn ${first}: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT.failed;
  }
}
