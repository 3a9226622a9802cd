import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { isEdgewardenError } from '../errors';

/** Exit codes of every command: 0 success, 1 a failed check, 2 bad usage or input. */
export const EXIT = { ok: 0, failedCheck: 1, badInput: 2 } as const;

/** The device home: --home, then $EDGEWARDEN_HOME, then ~/.edgewarden. */
export function resolveHome(flag?: string): string {
  return resolve(flag ?? process.env.EDGEWARDEN_HOME ?? join(homedir(), '.edgewarden'));
}

const useColour = (stream: NodeJS.WriteStream) => stream.isTTY === true && !process.env.NO_COLOR;

/** Wraps text in an ANSI colour when the stream is a terminal and NO_COLOR is unset. */
export function paint(
  stream: NodeJS.WriteStream,
  colour: 'red' | 'green' | 'yellow' | 'dim' | 'bold',
  text: string,
): string {
  if (!useColour(stream)) return text;
  const codes = { red: [31, 39], green: [32, 39], yellow: [33, 39], dim: [2, 22], bold: [1, 22] }[colour];
  return `\u001b[${codes[0]}m${text}\u001b[${codes[1]}m`;
}

/** Prints `value` as JSON when `json`, else the human text. */
export function emit(json: boolean | undefined, value: unknown, human: string | (() => string)): void {
  process.stdout.write(
    json ? `${JSON.stringify(value, null, 2)}\n` : `${typeof human === 'function' ? human() : human}\n`,
  );
}

/**
 * Runs a command action: its return value is the exit code; an EdgewardenError prints its code and
 * message (as JSON with --json) and exits 2; anything else is a bug and exits 2 with the stack.
 */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<number | undefined> | number | undefined) {
  return async (...args: A): Promise<void> => {
    const opts = args.find((a) => typeof a === 'object' && a !== null && !Array.isArray(a)) as
      | { json?: boolean }
      | undefined;
    try {
      process.exitCode = (await fn(...args)) ?? EXIT.ok;
    } catch (err) {
      process.exitCode = EXIT.badInput;
      if (isEdgewardenError(err)) {
        if (opts?.json)
          process.stderr.write(
            `${JSON.stringify({ error: { code: err.code, message: err.message, details: err.details } })}\n`,
          );
        else process.stderr.write(`${paint(process.stderr, 'red', `error ${err.code}`)}: ${err.message}\n`);
      } else {
        process.stderr.write(
          `${paint(process.stderr, 'red', 'error EW_CLI_INTERNAL')}: ${(err as Error)?.stack ?? String(err)}\n`,
        );
      }
    }
  };
}
