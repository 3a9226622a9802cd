/** Error codes of the command line itself. */
export const CLI_CODES = {
  EW_CLI_INTERNAL: 'An unexpected internal error; please report it with the printed stack.',
  EW_CLI_INPUT: 'An input, result or export file given on the command line is missing or not in the documented form.',
  EW_CLI_USAGE: 'A command was called with missing or conflicting arguments (exit code 2).',
} as const;

export type CliCode = keyof typeof CLI_CODES;
